# The default entry point: report what this page may do. Replace with your program
# (build with: node iwa-shell/build.mjs --main path/to/main.py).
import socketiwa

state = await socketiwa.permissions.state()
print("socketiwa", socketiwa.__version__, "backend", socketiwa.backend_name())
for name, value in state.items():
    print(f"  {name}: {value}")
