"""The one C extension, linked statically against AWS-LC's libcrypto.a.

AWSLC_INCLUDE / AWSLC_LIB point at an AWS-LC build: scripts/wasm/awslc.sh for Pyodide,
crypto/build_native.sh for the host CPython that tests the provider."""
import os

from setuptools import Extension, setup

include, lib = os.environ.get("AWSLC_INCLUDE"), os.environ.get("AWSLC_LIB")
if not include or not lib:
    raise SystemExit("set AWSLC_INCLUDE and AWSLC_LIB to an AWS-LC build (see crypto/build_native.sh)")

setup(
    ext_modules=[Extension(
        "socketiwa_crypto._awslc",
        sources=["src/socketiwa_crypto/_awslc.c"],
        include_dirs=[include],
        extra_objects=[os.path.join(lib, "libcrypto.a")],
        define_macros=[("Py_LIMITED_API", "0x030B0000")],
        extra_compile_args=["-O2"],
        py_limited_api=True,
    )],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
