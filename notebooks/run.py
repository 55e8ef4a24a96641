"""Execute the notebooks top to bottom, as the suite and ``make pictures`` do.

    python notebooks/run.py                      # run every notebook, keep no output
    python notebooks/run.py --pictures docs/img  # save their charts there as PNG

Values are given to a notebook the papermill way: a cell assigning them is inserted
after the cell tagged ``parameters``. The kernel is this interpreter (the venv's), never
a kernel installed elsewhere on the machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOTEBOOKS = tuple(sorted(HERE.glob("*.ipynb")))
CELL_TIMEOUT_S = 120


def execute(path: Path, **parameters: Any) -> Any:
    """Run the notebook at ``path`` in its own folder; return it with its outputs.

    Raises:
        nbclient.exceptions.CellExecutionError: A cell raised (an assertion, say).
    """
    # Jupyter reads kernels and settings from the user's folders unless told otherwise;
    # these keep it to the venv's own files, and quiet its platformdirs notice.
    os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient
    from traitlets.config import Config

    spec = KernelSpecManager().get_kernel_spec("python3")
    # jupyter_client starts a spec whose command is plain "python" with sys.executable.
    if spec.argv[0] not in ("python", "python3", sys.executable):
        raise RuntimeError(f"the python3 kernel runs {spec.argv[0]}, not {sys.executable}")
    notebook = nbformat.read(path, as_version=4)
    if parameters:
        tagged = [
            i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", ())
        ]
        source = "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
        notebook.cells.insert(tagged[0] + 1 if tagged else 0, cell)
    with tempfile.TemporaryDirectory() as sockets:
        # Unix sockets, not TCP on loopback: nothing of the kernel is on the network. The
        # path is absolute because the kernel runs in the notebook's folder.
        ipc = {"transport": "ipc", "ip": str(Path(sockets) / "kernel")}
        client = NotebookClient(
            notebook,
            timeout=CELL_TIMEOUT_S,
            kernel_name="python3",
            resources={"metadata": {"path": str(path.parent)}},
            config=Config({"KernelManager": ipc}),
        )
        client.execute()
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, default=list(NOTEBOOKS))
    parser.add_argument("--pictures", type=Path, help="save each notebook's charts here as PNG")
    args = parser.parse_args(argv)
    parameters = {}
    if args.pictures:
        # The README's pictures come from the seeded simulator, whatever demo/ holds.
        parameters = {"SOURCE": "simulator", "PICTURES": str(args.pictures.resolve())}
    for path in args.notebooks:
        began = time.perf_counter()
        execute(path.resolve(), **parameters)
        print(f"{path.name}: ran in {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
