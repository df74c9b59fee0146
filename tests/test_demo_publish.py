"""`python -m experiments.demo --publish NAME`: each section's wall time and the total recorded with provenance (the
source of the README's demo time); a bad name refused before any work."""

import json
import subprocess
import sys


from experiments import demo
from jaxnas.common import provenance


def test_publish_records_every_section_and_the_total(tmp_path, monkeypatch):
    ran = []

    def section(name):
        def run(workdir, report):
            ran.append(name)
            report.text(f"marker-{name}")
            return {"value": len(ran)}
        return run

    monkeypatch.setattr(demo, "SECTIONS", [("first", section("first")), ("second", section("second"))])
    monkeypatch.setattr(provenance, "RESULTS_DIR", tmp_path / "results")
    summary = demo.run_demo(str(tmp_path / "demo"), publish="demo_time_test")
    assert ran == ["first", "second"] and summary["second"]["value"] == 2
    doc = json.loads((tmp_path / "results" / "demo_time_test.json").read_text())
    times = doc["figures"]["section_wall_s"]
    assert list(times) == ["first", "second"]
    assert doc["figures"]["total_s"] >= sum(times.values()) >= 0
    assert doc["provenance"]["commit"] is not None and doc["command"].startswith("python -m experiments.demo")
    assert (tmp_path / "demo" / "report.md").read_text().count("marker-") == 2


def test_a_bad_publish_name_is_refused_before_any_work(tmp_path):
    out = subprocess.run([sys.executable, "-m", "experiments.demo", "--workdir", str(tmp_path / "w"),
                          "--publish", "Bad Name"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("error: --publish:")
    assert not (tmp_path / "w").exists()
