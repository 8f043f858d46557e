"""``edgebench predict``: classify images on this node, one JumpStart verbose JSON line per image."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.options import add_field_option, add_region_endpoint, bucket_location

if TYPE_CHECKING:
    from rich.console import Console


def add_predict(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.backends import BackendConfig
    from harness.plan import OPENVINO

    predict = commands.add_parser(
        "predict", help="classify images on this node; JumpStart verbose JSON, one line per image"
    )
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.add_argument("--model", required=True, help="model.tar.gz: local path or s3://BUCKET/KEY")
    predict.add_argument("--backend", default=OPENVINO, help=f"tf or openvino (default {OPENVINO})")
    add_field_option(predict, BackendConfig, "device")
    add_field_option(predict, BackendConfig, "precision")
    add_region_endpoint(predict, "S3-compatible endpoint for an s3:// model")
    predict.set_defaults(handler=cmd_predict)


def cmd_predict(args: argparse.Namespace, console: Console) -> int:
    import json
    import tempfile

    from harness import data, edge, store
    from harness.backends import BackendConfig, check_request, infer_each, load_backend
    from harness.errors import ArtifactError, DatasetError

    check_request([args.backend], args.precision.upper())
    for path in args.images:  # before the model loads, which takes seconds
        if not path.is_file():
            raise DatasetError(f"{path}: no such image file; pass JPEG or PNG files to classify")
    with tempfile.TemporaryDirectory(prefix="edgebench-predict-") as tmp:
        if args.model.startswith("s3://"):
            bucket, _ = store.parse_s3_uri(args.model)
            s3 = store.S3Store(bucket_location(args, bucket))
            model = edge.import_from_s3(s3, args.model, None, Path(tmp) / "edge")
        else:
            model = edge.import_local(Path(args.model), Path(tmp) / "edge")
        backend = load_backend(args.backend, model, BackendConfig(args.device, args.precision.upper()))
        for path in args.images:
            try:  # a label map of another width than the model's output is refused, not zipped short
                logits = infer_each(backend, data.load_image(path)[None], model.classes)[0]
            except ArtifactError as exc:
                raise ArtifactError(f"{args.model}: {exc}") from None
            print(json.dumps({"image": str(path), **edge.jumpstart_verbose(model.classes, logits)}))
    return 0
