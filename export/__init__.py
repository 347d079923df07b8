"""Export stage: SavedModel, TFLite and ONNX with the step-protocol signatures, parity-gated.

    from export import export_saved_model, export_tflite, export_onnx, export_all

Submodules import TensorFlow lazily where they can: `export.manifest.read_manifest` needs
only the standard library (serving/ uses it).
"""

# Eager (TF-free) so that importing the submodule `export.export_all` cannot shadow the function.
from export.export_all import export_all


def __getattr__(name):
    if name == "export_saved_model":
        from export.saved_model import export_saved_model
        return export_saved_model
    if name == "export_tflite":
        from export.tflite import export_tflite
        return export_tflite
    if name == "export_onnx":
        from export.onnx import export_onnx
        return export_onnx
    if name == "read_manifest":
        from export.manifest import read_manifest
        return read_manifest
    raise AttributeError(f"module 'export' has no attribute {name!r}")


__all__ = ["export_saved_model", "export_tflite", "export_onnx", "export_all", "read_manifest"]
