"""``hermes-sim import-model``: a Hugging Face config.json (a local file) -> a model catalog entry.

Bad input prints one line ``hermes-sim import-model: error: <file>: <field>=<value>: <allowed>``,
exits with status 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import textwrap
from pathlib import Path

import yaml
from omegaconf import OmegaConf

from hermes_opt.cli.calibrate_command import OneLineParser
from hermes_opt.compose.hf_config import SUPPORTED_MODEL_TYPES, config_to_entry
from hermes_opt.compose.values import model_spec
from sim.errors import ConfigError

PROG = "hermes-sim import-model"
# The user catalog: $HERMES_OPT_CONFIG_DIR, else ~/.config/hermes-opt; model entries in model/.
CONFIG_DIR_ENV = "HERMES_OPT_CONFIG_DIR"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

EPILOG = """\
what maps (docs/models_precision.md, "Importing a model"):
  attention   num_attention_heads, num_key_value_heads (absent = MHA), head_dim (absent =
              hidden_size / heads); MLA: kv_lora_rank, q_lora_rank, qk_nope/qk_rope/v_head_dim
  MoE         n_routed_experts | num_local_experts | num_experts, num_experts_per_tok,
              n_shared_experts | shared_expert_intermediate_size, moe_intermediate_size,
              first_k_dense_replace, moe_layer_freq, decoder_sparse_step, mlp_only_layers,
              interleave_moe_layer_step (Llama 4), mlp_layer_types
  other       num_hidden_layers, hidden_size, intermediate_size, vocab_size,
              max_position_embeddings, tie_word_embeddings; text_config of multimodal wrappers
  notes       sliding-window / chunked / DeepSeek-sparse attention are costed as full attention
              and quantization_config (fp8, nvfp4, mxfp4, int4, int8) is recorded as the
              weight_dtype to run with: both as comments at the top of the entry
refused       state-space / linear-attention layers (Mamba, Qwen3.5 Gated DeltaNet, MiniMax
              lightning attention), other model_types, missing or non-positive sizes, unknown
              quantization methods
model_types   """ + ", ".join(SUPPORTED_MODEL_TYPES)


def parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description=textwrap.fill(
        "Write a model catalog entry (docs/CATALOG_SCHEMA.md) from a Hugging Face config.json on "
        "disk; nothing is downloaded. The entry is checked the way the catalog's are before it "
        "is written.", 96), epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", metavar="CONFIG.json", help="the model's config.json (a local file)")
    p.add_argument("--name", required=True,
                   help="catalog name, snake_case (also the file stem: <name>.yaml)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"directory to write <name>.yaml into (default: the user catalog, "
                        f"${CONFIG_DIR_ENV}/model, else ~/.config/hermes-opt/model)")
    p.add_argument("--hf-id", default=None,
                   help="Hugging Face repository id (org/name) recorded as hf_id and in source")
    p.add_argument("--force", action="store_true", help="replace an existing <name>.yaml")
    return p


def user_model_dir() -> Path:
    root = os.environ.get(CONFIG_DIR_ENV) or os.path.join(os.path.expanduser("~"), ".config", "hermes-opt")
    return Path(root) / "model"


def import_main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    try:
        path = write_entry(args)
    except ConfigError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        sys.exit(2)
    print(f"{PROG}: wrote {path}")


def write_entry(args: argparse.Namespace) -> Path:
    if not _NAME.match(args.name):
        raise ConfigError(f"--name={args.name!r}: snake_case: a lowercase letter, then [a-z0-9_]")
    source = Path(args.config)
    try:
        config = json.loads(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{source}: cannot read: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{source}: not valid JSON: {err}") from None
    entry, notes = config_to_entry(config, args.name, str(source))
    hf_id = args.hf_id or _hf_id(config)
    if hf_id:
        entry = {"name": entry["name"], "hf_id": hf_id, **{k: v for k, v in entry.items() if k != "name"}}
    entry["source"] = (f"https://huggingface.co/{hf_id}/blob/main/config.json" if args.hf_id
                       else f"imported from {source.resolve()}")
    try:  # the same check the catalog's entries get when a run composes them
        model_spec(OmegaConf.create(entry))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    out_dir = Path(args.out) if args.out else user_model_dir()
    target = out_dir / f"{args.name}.yaml"
    if target.exists() and not args.force:
        raise ConfigError(f"--name={args.name!r}: {target} exists; pass --force to replace it")
    header = [f"Model catalog entry (schema: docs/CATALOG_SCHEMA.md) written by hermes-sim import-model "
              f"from {source.name}."] + notes
    text = "".join(f"# {line}\n" for line in header) + yaml.safe_dump(entry, sort_keys=False)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)  # no half-written entry if the write fails part-way
    except OSError as err:
        raise ConfigError(f"--out={str(out_dir)!r}: cannot write: {err.strerror or err}") from None
    return target


def _hf_id(config: dict) -> str | None:
    """``_name_or_path`` when it is a repository id (org/name), not a local path."""
    value = config.get("_name_or_path") if isinstance(config, dict) else None
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", value):
        return value
    return None
