"""`notify:` pages the levels of an escalation chain, waits for each to acknowledge and escalates
when none does; against the loopback receiver of tests/pager.py."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_events, write_runbook
from pager import Pager

from runner.cli import main

RUNBOOK = """
runbook: page
params:
  severity: {{type: string, default: critical}}
steps:
  - id: page
    notify:
      preset: {preset}
      url: "{url}/enqueue"
      message: "bot down on {{{{ host }}}}"
      severity: "{{{{ severity }}}}"
      levels: [L1, L2, L4]
      routing_key: "key-{{{{ level }}}}"
      {ack}
"""
ACK = 'ack: {url: "%s/ack/{{ level }}", within: 1s, every: 100ms}'


def test_no_acknowledgement_escalates_to_the_next_level(workdir: Path, pager: Pager) -> None:
    pager.acking = {"L2"}
    text = RUNBOOK.format(preset="pagerduty", url=pager.url, ack=ACK % pager.url)
    write_runbook(workdir, "page", text)
    assert main(["run", "page"]) == 0
    assert [p["body"]["payload"]["custom_details"]["level"] for p in pager.pages] == ["L1", "L2"]
    first = pager.pages[0]["body"]
    assert first["event_action"] == "trigger" and first["routing_key"] == "key-L1"
    assert first["payload"]["severity"] == "critical" and first["payload"]["source"] == "local"
    assert first["dedup_key"].endswith("-L1") and first["payload"]["summary"] == "bot down on local"
    assert "L1" in pager.polls and "L4" not in pager.polls
    (done,) = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    assert "acknowledged by L2" in done["stdout"]["head"]
    assert "/enqueue" not in json.dumps(run_events(workdir / "state"))  # the webhook's secret
    assert "no acknowledgement from L1" in done["stdout"]["head"]


def test_nobody_acknowledging_fails_the_step(workdir: Path, pager: Pager) -> None:
    text = RUNBOOK.format(preset="webhook", url=pager.url, ack=ACK % pager.url)
    write_runbook(workdir, "page", text)
    assert main(["run", "page", "-p", "severity=high"]) == 1
    assert [p["body"]["level"] for p in pager.pages] == ["L1", "L2", "L4"]
    assert {p["body"]["severity"] for p in pager.pages} == {"high"}
    (done,) = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    assert done["reason"] == "nobody acknowledged (L1, L2, L4)"


def test_slack_preset_without_ack_posts_every_level_at_once(workdir: Path, pager: Pager) -> None:
    write_runbook(workdir, "page", RUNBOOK.format(preset="slack", url=pager.url, ack=""))
    assert main(["run", "page"]) == 0
    assert pager.pages[0]["body"]["text"].startswith("[CRITICAL] L1: bot down on local")
    assert len(pager.pages) == 3 and pager.polls == []


def test_a_page_that_cannot_be_sent_escalates(workdir: Path, pager: Pager) -> None:
    pager.acking = {"L2"}
    text = RUNBOOK.format(preset="webhook", url=pager.url, ack=ACK % pager.url)
    text = text.replace(f'url: "{pager.url}/enqueue"', 'url: "http://127.0.0.1:9/{{ level }}"')
    text = text.replace("levels: [L1, L2, L4]", "levels: [L1, L2]")
    write_runbook(workdir, "page", text)
    assert main(["run", "page"]) == 1  # no page reaches anyone: nobody can acknowledge
    assert pager.polls == []


def test_an_ack_answer_that_is_not_json_is_not_an_acknowledgement(
    workdir: Path, pager: Pager
) -> None:
    """L1's ack endpoint answers a 502 page (a proxy in front of it, a restart): that poll is
    "not acknowledged yet", L1's `within` runs out and L2 is paged, who acknowledges."""
    pager.acking = {"L2"}
    pager.raw = {"L1": (502, b"<html>502 Bad Gateway</html>")}
    text = RUNBOOK.format(preset="webhook", url=pager.url, ack=ACK % pager.url)
    write_runbook(workdir, "page", text.replace("levels: [L1, L2, L4]", "levels: [L1, L2]"))
    assert main(["run", "page"]) == 0
    assert [p["body"]["level"] for p in pager.pages] == ["L1", "L2"]
    assert pager.polls.count("L1") > 1  # polled until `within` ran out
    (done,) = [e for e in run_events(workdir / "state") if e["event"] == "step.finished"]
    out = done["stdout"]["head"]
    assert "no acknowledgement from L1 within 1s (last answer: HTTP 502, not JSON:" in out
    assert "acknowledged by L2" in out
