"""A real round trip on the real Hugging Face Hub: push a copy of lam-mini, pull it back, compare.

    HF_TOKEN=hf_... python scripts/hub_smoke.py [--repo USER/lam-smoke-test] [--keep]

Creates a private repository (named after the token's user and the time unless --repo is given),
publishes version 0.0.1, downloads it into an empty cache, checks that predictions are identical, and
deletes the repository unless --keep. Without a token or without network it prints why it was
skipped and exits 0. Prints one JSON object.
"""

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from ase.build import molecule
from huggingface_hub import HfApi

from lam.hub.models import load_model
from lam.hub.publish import pull, push
from lam.testing import predict


def main() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=None)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    api = HfApi()
    try:
        user = api.whoami()["name"]
    except Exception as error:  # no token, no network: this machine cannot reach the Hub
        return {"skipped": f"the Hub is not reachable with a token here ({type(error).__name__}: {error})"}
    repo = args.repo or f"{user}/lam-smoke-{int(time.time())}"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(load_model("lam-mini").source["location"], folder)
        published = push(folder, repo, "0.0.1", private=True)
        pulled, commit = pull(f"{repo}@v0.0.1", out=Path(tmp) / "pulled")
        frames = [molecule("H2O")]
        same = torch.equal(predict(load_model(str(pulled)), frames).energy, predict(load_model("lam-mini"), frames).energy)
    if not args.keep:
        api.delete_repo(repo)
    return {"repo": repo, "commit": published.commit, "pulled_commit": commit, "identical": same,
            "deleted": not args.keep}


if __name__ == "__main__":
    result = main()
    print(json.dumps(result, indent=2))
    sys.exit(0 if result.get("skipped") or result.get("identical") else 1)
