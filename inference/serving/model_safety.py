"""What makes a model file from elsewhere safe to hand to its runtime, checked before the runtime sees it.

- A TensorFlow SavedModel: the ops its serving signature can reach (its output nodes, their inputs, every function
  they call, transitively) may not run Python, read or write files, or talk to other processes. The saver's own
  graph, which TensorFlow uses to restore the variables from the SavedModel's folder, is not reachable from it.
- An ONNX file: onnx.checker's full check, weights inside the file (external data could name any file on the
  machine), and operators of the standard domains only ("", ai.onnx, ai.onnx.ml, and model-local functions made
  of them): no custom or contributed operator, and no custom-op library is ever registered with ONNX Runtime.
"""

from __future__ import annotations

from pathlib import Path

from inference.serving.loading import ModelLoadError

# Ops a SavedModel's graphs may not hold: they run Python, read or write files, or reach other processes. A model
# that scores an image needs none of them.
SAVEDMODEL_REFUSED_OPS = frozenset(
    {
        "PyFunc", "PyFuncStateless", "EagerPyFunc",
        "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst",
        "Save", "SaveV2", "SaveSlices", "Restore", "RestoreV2", "RestoreSlice", "MergeV2Checkpoints",
        "ShardedFilename", "ShardedFilespec",
        "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2", "TFRecordReader",
        "TFRecordReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "IdentityReader",
        "IdentityReaderV2", "ReaderReadV2", "ReaderRead",
        "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "LoadDataset", "SaveDataset", "SaveDatasetV2",
        "DatasetToTFRecord", "CreateSummaryFileWriter", "WriteSummary", "WriteScalarSummary", "WriteImageSummary",
        "WriteHistogramSummary", "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary", "FlushSummaryWriter",
        "SummaryWriter", "CreateSummaryDbWriter", "ImportEvent", "LoadAndRemapMatrix", "GenerateVocabRemapping",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "_Send", "_Recv", "_HostSend", "_HostRecv",
        "Send", "Recv", "CollectiveReduce", "CollectiveGather", "CollectiveBcastSend", "CollectiveBcastRecv",
        "RemoteCall", "PrintV2", "Print", "DebugIdentityV2", "DebugIdentityV3",
    }
)  # fmt: skip
ONNX_STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


def savedmodel_refused_ops(folder: Path) -> set[str]:
    """The refused ops that the serving signature of a SavedModel can reach, read from saved_model.pb before
    anything is loaded: the signature's output nodes, their inputs, and every function they call, transitively.
    (The saver's own graph, which restores the variables when TensorFlow loads the model, is not reachable from it.)"""
    from tensorflow.core.protobuf import saved_model_pb2

    proto_file = Path(folder) / "saved_model.pb"
    if not proto_file.is_file():
        raise ModelLoadError("Not a SavedModel: saved_model.pb is missing at the top of the folder.")
    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(proto_file.read_bytes())
    except Exception as exc:  # noqa: BLE001  (a corrupt file is a refusal, with the parser's reason)
        raise ModelLoadError(f"saved_model.pb could not be read: {exc}") from exc
    graphs = [g for g in saved.meta_graphs if "serving_default" in g.signature_def]
    if not graphs:
        raise ModelLoadError("The SavedModel has no 'serving_default' signature (the only one the platform calls).")
    graph = graphs[0].graph_def
    functions = {f.signature.name: f for f in graph.library.function}
    nodes = {node.name: node for node in graph.node}
    ops: set[str] = set()
    seen_functions: set[str] = set()

    def called(node) -> list[str]:
        names = [node.op] if node.op in functions else []
        for attribute in node.attr.values():
            if attribute.func.name:
                names.append(attribute.func.name)
            names.extend(f.name for f in attribute.list.func)
        return names

    def visit_function(name: str) -> None:
        if name in seen_functions or name not in functions:
            return
        seen_functions.add(name)
        for node in functions[name].node_def:
            ops.add(node.op)
            for callee in called(node):
                visit_function(callee)

    pending = [tensor.name.split(":")[0] for tensor in graphs[0].signature_def["serving_default"].outputs.values()]
    seen_nodes: set[str] = set()
    while pending:
        name = pending.pop().lstrip("^").split(":")[0]
        if name in seen_nodes or name not in nodes:
            continue
        seen_nodes.add(name)
        node = nodes[name]
        ops.add(node.op)
        pending.extend(node.input)
        for callee in called(node):
            visit_function(callee)
    return ops & SAVEDMODEL_REFUSED_OPS


def onnx_model_checked(path: Path):
    """The ONNX model, after the checks that keep it from doing anything but compute: the checker's full check,
    weights inside the file (external data could point anywhere on this machine), standard domains only."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"Not a readable ONNX file: {exc}") from exc
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ModelLoadError(
            f"The ONNX file keeps weights outside itself ({', '.join(external[:3])}); export it with its weights "
            "inside (save_as_external_data=False)."
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"The ONNX checker refuses the file: {exc}") from exc
    local = {(f.domain, f.name): f for f in model.functions}
    nonstandard: set[str] = set()

    def visit(nodes) -> None:
        for node in nodes:
            if node.domain in ONNX_STANDARD_DOMAINS:
                for attribute in node.attribute:  # control flow (If, Loop, Scan) holds subgraphs
                    if attribute.g is not None and attribute.g.node:
                        visit(attribute.g.node)
                    for graph in attribute.graphs:
                        visit(graph.node)
            elif (node.domain, node.op_type) in local:
                visit(local[(node.domain, node.op_type)].node)
            else:
                nonstandard.add(f"{node.domain}:{node.op_type}")

    visit(model.graph.node)
    if nonstandard:
        raise ModelLoadError(
            f"The ONNX model uses operators outside the standard domains: {', '.join(sorted(nonstandard))}."
        )
    return model
