"""`runbook audit ACTION` arguments (a row of commands/table.py)."""

from __future__ import annotations

import argparse


def add_audit(a: argparse.ArgumentParser) -> None:
    asub = a.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    av = asub.add_parser(
        "verify", help="recompute every chain, signature and the ledger (exit 4 on failure)"
    )
    av.add_argument("run_id", nargs="?", metavar="RUN_ID", help="only this run (default: all)")
    av.add_argument(
        "--public-key", metavar="FILE", help="require every closed run signed by this key"
    )
    av.add_argument(
        "--allowed-signers",
        metavar="FILE",
        help="check people's signatures against this file (default: the policy's)",
    )
    av.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="also prove nothing the checkpoint covered was dropped from or rewritten in the ledger",
    )
    av.add_argument(
        "--collected",
        metavar="FILE",
        help="verify a collector's copy (what `audit ship` sent) instead of the state dir",
    )
    acp = asub.add_parser("checkpoint", help="write the ledger's signed head (an anchor)")
    acp.add_argument(
        "-o", "--out", required=True, metavar="FILE", help="where to write the checkpoint"
    )
    asp = asub.add_parser("ship", help="send every record not yet sent to a syslog collector")
    asp.add_argument(
        "--to", metavar="URL", help="tcp://HOST:PORT or tls://HOST:PORT (env RUNBOOK_SHIP_TO)"
    )
    asp.add_argument(
        "--ca", metavar="FILE", help="with tls://: the CA that signed the collector's certificate"
    )
    al = asub.add_parser("list", help="one line per run")
    al.add_argument("--runbook", metavar="ID", help="only runs of this runbook")
    al.add_argument("--actor", metavar="NAME", help="only runs by this operator or OS user")
    al.add_argument("--status", metavar="OUTCOME", help="only runs that ended so (succeeded, …)")
    when = "(2026-11-24, 2026-11-24T18:00, 2026-11-24T18:00:00Z, today, yesterday, 3d, 12h)"
    al.add_argument("--since", metavar="WHEN", help=f"only runs started at or after {when}")
    al.add_argument("--until", metavar="WHEN", help="only runs started at or before WHEN")
    al.add_argument("--ticket", metavar="ID", help="only runs of this change ticket")
    al.add_argument(
        "--needs-review", action="store_true", help="emergency runs without a retroactive review"
    )
    ash = asub.add_parser("show", help="a run as a timeline")
    ash.add_argument("run_id", metavar="RUN_ID", help="the run (see `runbook audit list`)")
    ax = asub.add_parser("export", help="a run, or all, as md, html, json or csv")
    ax.add_argument("run_id", nargs="?", metavar="RUN_ID", help="the run (or --all)")
    ax.add_argument("--all", action="store_true", help="every run")
    ax.add_argument(
        "--format", choices=["md", "html", "json", "csv"], default="md", help="default: md"
    )
    ax.add_argument("-o", "--out", metavar="FILE", help="write there (default: stdout)")
    ar = asub.add_parser("review", help="sign the retroactive review of an emergency run")
    ar.add_argument("run_id", metavar="RUN_ID", help="the emergency run")
    ar.add_argument("--by", help="the reviewer (with --ssh-key: the key's principal)")
    ar.add_argument("--note", help="a note recorded with the review")
    ak = asub.add_parser("keygen", help="write an Ed25519 key pair: PREFIX (0600) and PREFIX.pub")
    ak.add_argument(
        "--out",
        default="runbook-signing-key",
        metavar="PREFIX",
        help="default: runbook-signing-key",
    )
    from runner.commands.audit_report import add_parser as add_report

    add_report(asub)
