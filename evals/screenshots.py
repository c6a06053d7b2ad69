"""The docs' two pictures: a run's report, and its served chat page after one turn.

    python -m clusteragent.evals.screenshots RUN_DIR [--message 'Merge "A" and "B".'] [--out docs]

Writes OUT/report.png (the report of RUN_DIR, as `clusteragent report` writes it) and OUT/chat.png (the page
of `clusteragent serve RUN_DIR` after the message, answered by the run's model). The message changes RUN_DIR:
use a copy.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from clusteragent.evals.chromium import chromium_page, settle
    from clusteragent.serve import RunService, create_app, running

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--message", help="the chat turn to show (default: merge the two smallest clusters)")
    ap.add_argument("--out", default="docs")
    args = ap.parse_args(argv)
    out = Path(args.out)
    service = RunService(args.run_dir)
    report = service.agent.report(Path(args.run_dir) / "report.html")
    with chromium_page() as page:
        page.goto(report.as_uri())
        page.wait_for_selector("#fig-map canvas")
        settle(page)
        page.screenshot(path=str(out / "report.png"))
    clusters = service.agent.result_.clusters
    message = args.message or f'Merge "{clusters[-2]["name"]}" and "{clusters[-1]["name"]}".'
    print(service.turn(message)["reply"])
    with running(create_app(service)) as url, chromium_page() as page:
        page.goto(url + "/")
        page.wait_for_selector("#fig-map canvas")
        settle(page)
        page.screenshot(path=str(out / "chat.png"))
    print(f"wrote {out / 'report.png'} and {out / 'chat.png'}")


if __name__ == "__main__":
    main()
