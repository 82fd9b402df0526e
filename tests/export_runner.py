"""Runs exported model folders with ``transformers`` alone, in a process where softprompt cannot be imported.

Used by tests/test_export.py: ``python tests/export_runner.py JOBS.json OUT.json``. Every job names a
folder and what to run on it (a model class's forward, ``generate``, a pipeline, ONNX Runtime); the
results go to ``OUT.json`` as plain lists, keyed by job name. Nothing here imports softprompt or the
tests package: an import of softprompt raises, and the script checks that it does before any job.
"""

from __future__ import annotations

import json
import sys


class _BlockSoftprompt:
    """A meta-path finder that makes ``import softprompt`` (and its submodules) fail in this process."""

    def find_spec(self, name, path=None, target=None):
        if name == "softprompt" or name.startswith("softprompt."):
            raise ImportError(f"{name} is blocked: this process runs exported models without softprompt")
        return None


sys.meta_path.insert(0, _BlockSoftprompt())


def _encode(tok, job):
    kwargs = {"return_tensors": "pt", "padding": True, "truncation": job.get("truncation", False)}
    if job.get("pairs"):
        first, second = zip(*job["inputs"])
        return tok(list(first), list(second), **kwargs)
    return tok(job["inputs"], **kwargs)


def run(job: dict) -> dict:
    import torch
    import transformers

    transformers.utils.logging.disable_progress_bar()
    folder = job["folder"]
    kind = job["kind"]
    if kind == "pipeline":
        pipe = transformers.pipeline(job["task"], model=folder, tokenizer=folder)
        return {"output": pipe(job["inputs"], **job.get("kwargs", {}))}
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(f"{folder}/{job['file']}", providers=["CPUExecutionProvider"])
        enc = _encode(tok, job)
        names = [i.name for i in session.get_inputs()]
        feed = {n: (enc[n] if n in enc else torch.zeros_like(enc["input_ids"])).numpy() for n in names}
        outs = session.run(None, feed)
        return {o.name: v.tolist() for o, v in zip(session.get_outputs(), outs)}
    model = getattr(transformers, job["auto"]).from_pretrained(folder).eval()
    out: dict = {"tokens": []}
    with torch.no_grad():
        if kind == "forward":  # one padded batch
            enc = _encode(tok, job)
            result = model(**enc)
            out["input_ids"] = enc["input_ids"].tolist()
            for key in job["outputs"]:
                out[key] = result[key].tolist()
        elif kind == "forward_each":  # one text at a time, no padding
            for key in job["outputs"]:
                out[key] = []
            for text in job["inputs"]:
                enc = tok([text], return_tensors="pt")
                result = model(**enc)
                for key in job["outputs"]:
                    out[key].append(result[key][0].tolist())
        elif kind == "generate":  # one text at a time, greedy
            out["generated"] = []
            for text in job["inputs"]:
                enc = tok([text], return_tensors="pt")
                ids = model.generate(**enc, max_new_tokens=job["max_new_tokens"], do_sample=False)
                new = ids[0, enc["input_ids"].shape[1] :] if job.get("causal") else ids[0]
                out["generated"].append(new.tolist())
        out["tokens"] = [tok.convert_ids_to_tokens(tok(t if isinstance(t, str) else t[0])["input_ids"])
                         for t in job["inputs"][:1]]  # fmt: skip
    return out


def main() -> int:
    try:
        import softprompt  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("softprompt could be imported: the check that exports run without it is void")
    with open(sys.argv[1]) as fh:
        jobs = json.loads(fh.read())
    results = {name: run(job) for name, job in jobs.items()}
    with open(sys.argv[2], "w") as fh:
        json.dump(results, fh, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
