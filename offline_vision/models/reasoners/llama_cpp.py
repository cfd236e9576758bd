"""A local GGUF chat model through llama-cpp-python, with grammar-constrained answers.

The chat template comes from the GGUF. Consecutive turns of one conversation reuse the
evaluated prefix: llama-cpp-python keeps the last prompt's tokens in its KV cache and only
evaluates what differs; `Usage.evaluated_prompt_tokens` reads llama.cpp's own counter.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import re
import signal
import subprocess
import sys
import threading
from functools import wraps
from pathlib import Path
from typing import Any

from offline_vision.errors import BadModel, ChecksumMismatch, ReasonerError
from offline_vision.files import shown, write_atomic
from offline_vision.models.provision.integrity import sha256_file
from offline_vision.models.reasoners.base import BaseReasoner, Usage
from offline_vision.models.reasoners.grammar import (
    bounded_tojson,
    choices_grammar,
    grammar_safe,
    render_bounded,
)

log = logging.getLogger("ovision")

DEFAULT_CTX = 8192
_LOADED: dict[tuple, Any] = {}  # one model per process: (path, n_ctx, threads) → Llama
# The one loaded model has one KV cache and one context: loading it and every call on it hold
# this lock, so threads sharing a reasoner take turns instead of corrupting its state.
_LOCK = threading.RLock()


def _one_at_a_time(method):
    @wraps(method)
    def locked(*args, **kwargs):
        with _LOCK:
            return method(*args, **kwargs)

    return locked


def fold_roles(messages) -> list[dict]:
    """The conversation for a chat template with no system role whose user and assistant turns
    must alternate (Gemma's): the system text opens the first user turn, and consecutive turns
    of one role are joined — as llama.cpp's own server does."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [dict(m) for m in messages if m["role"] != "system"]
    if system:
        if turns and turns[0]["role"] == "user":
            turns[0]["content"] = f"{system}\n\n{turns[0]['content']}"
        else:
            turns.insert(0, {"role": "user", "content": system})
    out: list[dict] = []
    for m in turns:
        if out and out[-1]["role"] == m["role"]:
            out[-1]["content"] += "\n\n" + m["content"]
        else:
            out.append(m)
    return out


@atexit.register
@_one_at_a_time
def _close_all() -> None:
    # Close while the interpreter is intact; llama-cpp-python's __del__ fails at teardown.
    for llm in _LOADED.values():
        llm.close()
    _LOADED.clear()


# --- AMX: ggml's native build on an Intel Xeon that reports AMX compiles AMX kernels, and under
# some hypervisors the first `tilezero` dies with SIGILL, taking the process with it. Where the
# loaded build has AMX kernels and the CPU claims AMX, a child process tries the model first.
AMX_CPU_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
REBUILD = (
    f'CFLAGS="{NO_AMX}" CXXFLAGS="{NO_AMX}" pip install --force-reinstall --no-deps '
    "--no-cache-dir llama-cpp-python==0.3.36"
)
GPU_REBUILD = (
    'CMAKE_ARGS="-DGGML_CUDA=on" pip install --force-reinstall --no-deps --no-cache-dir '
    "llama-cpp-python==0.3.36"
)
PROBE_CODE = (
    "import sys; from llama_cpp import Llama; "
    "m = Llama(model_path=sys.argv[1], n_ctx=128, n_threads=1, verbose=False); "
    "m.eval(m.tokenize(b'Name a mammal: cat, dog or ship?'))"
)


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def system_info() -> str:
    import llama_cpp

    return llama_cpp.llama_print_system_info().decode(errors="replace")


def amx_at_risk(info: str, flags: set[str]) -> bool:
    """The build reports AMX kernels and the CPU says it has AMX: the case that can fault."""
    return "AMX_INT8 = 1" in info and bool(flags & set(AMX_CPU_FLAGS))


def check_amx(path: Path, cache: Path | None) -> None:
    """Raise a one-line ReasonerError where this build's AMX kernels fault on this CPU."""
    import llama_cpp

    info, flags = system_info(), cpu_flags()
    if not amx_at_risk(info, flags):
        return
    lib = Path(llama_cpp.__file__).parent
    libs = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(lib.rglob("*.so"))]
    key = json.dumps([str(lib), libs, sorted(flags), info], sort_keys=True)
    verdicts = {}
    if cache is not None and cache.exists():
        try:
            verdicts = json.loads(cache.read_text())
        except ValueError:
            verdicts = {}
    if key not in verdicts:
        try:
            proc = subprocess.run(
                [sys.executable, "-c", PROBE_CODE, str(path)], capture_output=True, timeout=300
            )
            verdicts[key] = "sigill" if proc.returncode == -signal.SIGILL else "ok"
        except subprocess.TimeoutExpired:
            verdicts[key] = "ok"  # slow is not a fault; the real load will tell
        if cache is not None:
            write_atomic(cache, json.dumps(verdicts))
    if verdicts[key] == "sigill":
        raise ReasonerError(
            "this llama-cpp-python build uses AMX kernels that fault on this CPU (SIGILL); "
            f"rebuild it without AMX: {REBUILD}"
        )


@_one_at_a_time
def _load(
    path: Path, n_ctx: int, threads: int, probe_cache: Path | None = None, gpu_layers: int = 0
):
    key = (str(path), n_ctx, threads, gpu_layers)
    if key not in _LOADED:
        try:
            import jinja2
            import llama_cpp
            from llama_cpp import Llama
        except ImportError as e:
            raise ReasonerError(
                "local reasoners need llama-cpp-python: pip install 'offline_vision[llm]'"
            ) from e
        if gpu_layers and not llama_cpp.llama_supports_gpu_offload():
            raise ReasonerError(
                f"--gpu-layers {gpu_layers}: this llama-cpp-python build cannot use a GPU; "
                f"rebuild it with CUDA: {GPU_REBUILD}"
            )
        check_amx(path, probe_cache)
        _close_all()  # keep one model in memory at a time
        try:
            _LOADED[key] = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise BadModel(f"{path}: llama.cpp could not load it ({e})") from e
        except (jinja2.TemplateError, RecursionError) as e:  # compiled as the model loads
            raise BadModel(
                f"{path}: its chat template does not parse ({shown(str(e))[:200]})"
            ) from None
    return _LOADED[key]


class LlamaCppReasoner(BaseReasoner):
    def __init__(
        self,
        path: Path,
        *,
        name: str,
        sha256: str | None = None,
        n_ctx: int = DEFAULT_CTX,
        threads: int = 1,
        probe_cache: Path | None = None,
        gpu_layers: int = 0,
    ):
        self.path, self.name, self.n_ctx, self.threads = Path(path), name, n_ctx, threads
        self.gpu_layers = gpu_layers  # layers offloaded to the GPU (-1: all)
        self.probe_cache = probe_cache  # where the AMX probe's verdict is kept
        self.expected_sha256 = sha256
        self._verified: str | None = None
        self._template: tuple | None = None  # (the loaded model, its compiled chat template)

    def verify(self) -> str:
        """sha256 of the GGUF, checked against the pin where there is one (once per process)."""
        if self._verified is None:
            if not self.path.is_file():
                raise BadModel(f"{self.path}: GGUF file not found")
            with open(self.path, "rb") as f:
                if f.read(4) != b"GGUF":
                    raise BadModel(f"{self.path}: not a GGUF file (bad magic)")
            digest = sha256_file(self.path)
            if self.expected_sha256 and digest != self.expected_sha256:
                raise ChecksumMismatch(
                    f"{self.path}: sha256 {digest[:16]}… is not the recorded {self.expected_sha256[:16]}… "
                    "(truncated or altered; `ovision models pull` it again)"
                )
            self._verified = digest
        return self._verified

    @property
    def llm(self):
        self.verify()
        return _load(self.path, self.n_ctx, self.threads, self.probe_cache, self.gpu_layers)

    def describe(self) -> dict:
        return {
            "reasoner": "llama_cpp",
            "name": self.name,
            "path": str(self.path),
            "sha256": self.verify(),
            "n_ctx": self.n_ctx,
            "threads": self.threads,
            **({"gpu_layers": self.gpu_layers} if self.gpu_layers else {}),
        }

    @_one_at_a_time
    def count_tokens(self, text: str) -> int:
        """Exact, with the GGUF's own tokenizer."""
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def _formatter(self, llm):
        """The GGUF's own chat template as llama-cpp-python renders it (None: it has none),
        compiled once per loaded model."""
        import jinja2
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if self._template is not None and self._template[0] is llm:
            return self._template[1]
        template = llm.metadata.get("tokenizer.chat_template")
        formatter = None
        if template:
            text = llm._model.token_get_text
            try:
                formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=text(llm.token_eos()),
                    bos_token=text(llm.token_bos()),
                )
            except (jinja2.TemplateError, RecursionError) as e:
                raise ReasonerError(
                    f"{self.name}: the GGUF's chat template does not parse ({shown(str(e))[:200]})"
                ) from None
            formatter._environment.environment.filters["tojson"] = bounded_tojson
        self._template = (llm, formatter)
        return formatter

    def _rendered(self, llm, messages):
        """(messages, the template's rendering of them) as the GGUF's chat template takes
        them: as they are, else (a template that refuses a system role or turns that do not
        alternate, as Gemma's does) folded. (messages, None) for a GGUF without a template."""
        import jinja2

        messages, formatter = list(messages), self._formatter(llm)
        if formatter is None:
            return messages, None
        try:
            return messages, render_bounded(self.name, formatter, messages)
        except (ValueError, jinja2.TemplateError) as refused:
            folded = fold_roles(messages)
            try:
                rendered = render_bounded(self.name, formatter, folded)
            except (ValueError, jinja2.TemplateError) as e:
                raise ReasonerError(
                    f"{self.name}: the GGUF's chat template refuses the conversation ({e})"
                ) from None
            log.debug("%s: chat template refused the turns (%s); folded", self.name, refused)
            return folded, rendered

    @_one_at_a_time
    def prompt(self, messages) -> str | None:
        """The text the model is given for `messages`, through its own chat template."""
        rendered = self._rendered(self.llm, messages)[1]
        return rendered.prompt if rendered is not None else None

    def _chat_tokens(self, llm, messages) -> list[int] | None:
        """The prompt tokens create_chat_completion would evaluate, from the GGUF's template."""
        r = self._rendered(llm, messages)[1]
        if r is None:
            return None
        added = getattr(r, "added_special", False)
        return llm.tokenize(r.prompt.encode("utf-8"), add_bos=not added, special=True)

    @_one_at_a_time
    def choice_probabilities(self, messages, choices) -> dict[str, float] | None:
        """Each choice's token log-probability after the chat prompt (teacher-forced, one token
        at a time), normalised over the choices: what the choices grammar decodes from."""
        import numpy as np

        llm = self.llm
        prefix = self._chat_tokens(llm, messages)
        if not prefix:
            return None
        n_vocab = llm.n_vocab()

        def logprobs():
            z = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,)).astype(np.float64)
            z -= z.max()
            return z - np.log(np.exp(z).sum())

        llm.reset()
        llm.eval(prefix)
        first, n0, scores = logprobs(), llm.n_tokens, {}
        for choice in choices:
            tokens = llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False)
            lp, current = 0.0, first
            llm.n_tokens = n0  # back to the end of the prompt (eval drops what follows)
            for j, t in enumerate(tokens):
                lp += float(current[t])
                if j < len(tokens) - 1:
                    llm.eval([t])
                    current = logprobs()
            scores[choice] = lp
        llm.n_tokens = n0
        top = max(scores.values())
        total = sum(math.exp(v - top) for v in scores.values())
        return {c: math.exp(v - top) / total for c, v in scores.items()}

    @_one_at_a_time
    def _raw(
        self, messages, *, choices, schema, max_tokens, temperature, seed
    ) -> tuple[str, Usage]:
        import llama_cpp
        from llama_cpp import LlamaGrammar

        if schema is not None:
            grammar_safe(self.name, schema)  # before the model loads: a bad key is one line
        llm = self.llm
        grammar = None
        if choices is not None:
            grammar = LlamaGrammar.from_string(choices_grammar(choices), verbose=False)
        elif schema is not None:
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
        llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
        try:
            out = llm.create_chat_completion(
                messages=self._rendered(llm, messages)[0],
                grammar=grammar,
                max_tokens=max_tokens,
                temperature=temperature,
                seed=seed,
            )
        except ValueError as e:
            m = re.search(r"Requested tokens \((\d+)\) exceed context window of (\d+)", str(e))
            if m:
                n, ctx = int(m[1]), int(m[2])
                raise ReasonerError(
                    f"{self.name}: prompt is {n} tokens, {n - ctx} over the {ctx}-token context "
                    "window (raise --ctx or shorten the prompt)"
                ) from None
            raise ReasonerError(f"{self.name}: {e}") from None
        perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
        usage = out.get("usage", {})
        text = out["choices"][0]["message"].get("content") or ""
        return text, Usage(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            evaluated_prompt_tokens=int(perf.n_p_eval),
        )
