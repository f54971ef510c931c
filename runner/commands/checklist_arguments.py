"""The arguments of `runbook checklist ACTION`: light, so that building the CLI does not import
the checklist commands (commands/checklist.py) until one runs."""

from __future__ import annotations

import argparse


def add_arguments(c: argparse.ArgumentParser) -> None:
    csub = c.add_subparsers(dest="checklist_command", required=True, metavar="ACTION")

    def cmd(name: str, help_: str, *, item: bool = False) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = csub.add_parser(name, help=help_)
        p.add_argument("name", metavar="CHECKLIST", help="checklist name or path")
        if item:
            p.add_argument("item", metavar="ITEM", help="item id")
        p.add_argument(
            "--period",
            metavar="INSTANCE",
            help="the instance (2026-11-24, 2026-W48, 2026-11, 2026-Q4, or a once-only name); "
            "default: the current period",
        )
        return p

    st = cmd("start", "open the instance of the current (or given) period")
    st.add_argument("--by", help="who starts it (default: OS user)")
    r = cmd("run", "execute the automated items and attach their evidence")
    r.add_argument("items", nargs="*", metavar="ITEM", help="only these (default: all not done)")
    r.add_argument("-i", "--inventory", metavar="INV", help="inventory for the items' runbooks")
    r.add_argument("--by", help="who performs them (default: OS user)")
    r.add_argument("--yes", action="store_true", help="answer runbooks' confirm: questions")
    r.add_argument("--quiet", action="store_true", help="do not echo command output")
    sg = cmd("sign", "sign an item", item=True)
    sg.add_argument("--by", help="the signer's name (default: OS user)")
    sg.add_argument(
        "--meaning",
        choices=["performed", "reviewed", "approved", "verified"],
        help="default: the item's sign-off meaning",
    )
    sg.add_argument("--note", help="a note recorded with the signature")
    sk = cmd("skip", "skip an item, with a reason", item=True)
    sk.add_argument("--reason", required=True, help="why it is skipped (recorded)")
    sk.add_argument("--by", help="who decides (default: OS user)")
    ss = cmd("status", "the instance's items, who did what, evidence and progress")
    ss.add_argument(
        "--format", choices=["text", "md", "json"], default="text", help="default: text"
    )
    ss.add_argument("--history", action="store_true", help="also every record, in order")
    co = cmd("complete", "the final sign-off; refused while a required item is pending")
    co.add_argument("--by", help="who closes it (default: OS user)")
    co.add_argument("--note", help="a note recorded with the sign-off")
    du = csub.add_parser("due", help="checklists with no completed instance for the current period")
    du.add_argument("--format", choices=["text", "json"], default="text", help="default: text")
