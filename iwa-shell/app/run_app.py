"""Run a `socketiwa build` app's entry point in Pyodide the way `python main.py ARGS` would:
sys.argv, the app's folder first on sys.path and as the working directory, __name__ ==
"__main__". Top-level `await` is allowed too (the page's event loop is already running).
Returns the exit status: 0, SystemExit's code, or 1 after printing an uncaught exception's
traceback to stderr."""
import ast
import inspect
import os
import sys
import traceback
import types


async def run(entry, argv):
    app_dir = os.path.dirname(entry)
    sys.argv = [os.path.basename(entry), *argv]
    sys.path.insert(0, app_dir)
    os.chdir(app_dir)
    module = types.ModuleType("__main__")
    module.__file__ = entry
    saved_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module
    try:
        with open(entry, encoding="utf-8") as f:
            source = f.read()
        code = compile(source, entry, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, module.__dict__)
        if inspect.iscoroutine(result):
            await result
        return 0
    except SystemExit as e:
        if e.code is None:
            return 0
        if isinstance(e.code, int):
            return e.code
        print(e.code, file=sys.stderr)
        return 1
    except BaseException as e:
        # Drop this runner's own frame: the traceback starts in the user's code.
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        if saved_main is not None:
            sys.modules["__main__"] = saved_main
