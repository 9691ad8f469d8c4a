"""`nait`: capture, build features, score, select and export from the command line.

    nait select --candidates demo --target gsm8k --ratio 0.1 --out chosen.jsonl --scores scores.jsonl
    nait capture --data pool.jsonl
    nait feature --target gsm8k --target-size 64 --out gsm8k.safetensors
    nait score --candidates pool.jsonl --feature gsm8k.safetensors --scores scores.jsonl
    nait plan --candidates pool.jsonl --model ./llama-2-7b --json
    nait info
    nait verify --repair
    nait eval --candidates demo --target gsm8k --methods overlap,nait-pca,ifd --out runs/gsm8k
    nait app [--server.port 8502 …]   # the Streamlit app; extra options go to `streamlit run`
    nait explain neuron L12.N345 --candidates demo --target gsm8k
    nait explain shared --candidates demo --target gsm8k --target humaneval --target mmlu

Every command's options live in this package: `options` (the option groups commands share, the model
options among them), `checks` (the checks made before any slow work), then one module per command group:
`select` (select, score), `capture` (capture, feature), `plan`, `stores` (info, verify), `eval`, `app`, `explain`.
"""

from __future__ import annotations

import argparse
import sys

from ..data import DataError
from ..features import FeatureError
from ..models import ModelError
from ..store import StoreError
from .app import add_app_parser, app_script, cmd_app
from .capture import add_capture_parser, add_feature_parser, warn_if_exact_too_big
from .checks import check_args
from .eval import add_eval_parser
from .explain import add_explain_parser
from .options import add_model_args, model_from_args
from .plan import add_plan_parser
from .select import add_score_parser, add_select_parser
from .stores import add_info_parser, add_verify_parser

__all__ = [
    "add_model_args",
    "app_script",
    "build_parser",
    "check_args",
    "main",
    "model_from_args",
    "warn_if_exact_too_big",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nait", description="Neuron-aware instruction-tuning data selection.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (
        add_select_parser,
        add_capture_parser,
        add_feature_parser,
        add_score_parser,
        add_info_parser,
        add_verify_parser,
        add_eval_parser,
        add_app_parser,
        add_explain_parser,
        add_plan_parser,
    ):
        add(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "app":
        args.streamlit_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "app":
            return cmd_app(args)
        check_args(args)
        args.func(args)
    except (DataError, ModelError, StoreError, FeatureError, ValueError) as error:  # SketchError is a ValueError
        print(f"nait: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "nait: interrupted; finished shards and arms are kept, run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    return 0
