"""On-device runtime: a TFLite flatbuffer with one signature runner per signature
(ai-edge-litert; XNNPACK on by default). Inputs are resized to each call's batch."""

import pathlib

from serving.backend import Backend
from serving.generation_spec import read_manifest

DEFAULT_FILE = "model.tflite"


class TFLiteBackend(Backend):
    name = "tflite"

    def __init__(self, path, num_threads=1):
        from ai_edge_litert import interpreter as litert

        path = pathlib.Path(path)
        self.file = path / DEFAULT_FILE if path.is_dir() else path
        if not self.file.is_file():
            raise FileNotFoundError(f"No TFLite file at {str(self.file)!r}.")
        self._interpreter = litert.Interpreter(model_path=str(self.file),
                                               num_threads=int(num_threads))
        self._runners, self._signatures = {}, {}
        for name in self._interpreter.get_signature_list():
            runner = self._interpreter.get_signature_runner(name)
            self._runners[name] = runner
            self._signatures[name] = {
                "inputs": _specs(runner.get_input_details()),
                "outputs": _specs(runner.get_output_details())}
        try:
            self._manifest = read_manifest(self.file)
        except FileNotFoundError:
            self._manifest = None

    def _run(self, signature, feeds):
        out = self._runners[signature](**feeds)
        return {k: v.copy() for k, v in out.items()}


def _specs(details):
    specs = {}
    for name, detail in details.items():
        shape = tuple(None if d < 0 else int(d) for d in detail["shape_signature"])
        specs[name] = (shape, detail["dtype"])
    return specs
