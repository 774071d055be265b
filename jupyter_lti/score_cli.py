"""``jupyter-lti-score``: submit learners' scores to the hub, which sends them to the platforms' gradebooks.

    export JUPYTERHUB_API_TOKEN=...   # a token with the scope custom:lti-publish:scores
    jupyter-lti-score --hub-url https://hub.example.org/ sam "Week 1" 7 --max-score 10
    jupyter-lti-score --hub-url https://hub.example.org/ --csv grades.csv

The CSV has a header row naming its columns: ``user``, ``assignment``, ``score``, and optionally
``max_score`` and ``final`` (true/false); nbgrader's ``nbgrader export`` CSV has ``student_id`` and
``score`` and ``max_score`` too, so ``--user-column student_id`` reads it. The whole CSV is read and
checked first, then sent in requests of up to 1000 rows, each all or nothing: a refused row stops
the run, naming its line (the requests before it were accepted). The token is read from
an environment variable (``--token-env``, default ``JUPYTERHUB_API_TOKEN``), never from the command
line, which other users of the machine may see.

Exit status: 0 every score accepted; 1 the hub refused a score (the reason code is printed; with
``--skip-unmatched``, the rows of learners who never launched the assignment are left out and
reported, the others sent); 2 a usage or CSV error; 3 the hub could not be reached, or failed.

Standard library only: it runs where nothing else of lti-publish is installed (a grader's laptop).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TextIO
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
#: Scores per request (the hub's ``jupyter_lti.scores.MAX_BATCH``).
BATCH = 1000
TIMEOUT = 60.0
#: The refusals ``--skip-unmatched`` skips: a learner who never launched the assignment (nbgrader
#: exports every student of the course), or whose link takes no grade.
SKIPPABLE = frozenset({"user_unknown", "assignment_unknown", "grade_service_unavailable"})
_TRUE = {"true", "1", "yes", "y", "final"}
_FALSE = {"false", "0", "no", "n", "in_progress", "in-progress"}


class UsageError(Exception):
    """A command line or CSV the CLI cannot use (exit status 2)."""


class Refused(Exception):
    """The hub's refusal: its status, reason code and message (exit status 1, or 3 for a 5xx)."""

    def __init__(self, status: int, reason: str, message: str, index: int | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message, self.index = status, reason, message, index
        #: The CSV line of the refused score (0: not from a CSV).
        self.line = 0

    def describe(self) -> str:
        where = f" (CSV line {self.line})" if self.line else ""
        return f"refused ({self.status} {self.reason}): {self.message}{where}"


def scores_url(hub_url: str) -> str:
    """The score API of the hub at ``hub_url``: its public URL (with its base URL), its /hub/ URL,
    or its API URL (``JUPYTERHUB_API_URL`` in a user's server)."""
    base = hub_url.rstrip("/")
    if base.endswith("/hub/api"):
        return base + "/lti/scores"
    if base.endswith("/hub"):
        return base + "/api/lti/scores"
    return base + "/hub/api/lti/scores"


def accept_language() -> str:
    """The grader's language, from the locale's variables (``fr_FR.UTF-8`` -> ``fr-FR``): the hub's
    refusals come back in it."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "").split(".")[0].split("@")[0]
        if value and value not in ("C", "POSIX"):
            return value.replace("_", "-")
    return "en"


def post_scores(url: str, token: str, scores: list[dict[str, Any]], timeout: float = TIMEOUT) -> dict[str, Any]:
    """POST ``scores``; the hub's 202 answer, or ``Refused`` (``OSError`` when it cannot be reached)."""
    request = Request(  # noqa: S310 - the URL's scheme is checked by main
        url,
        data=json.dumps(scores).encode("utf-8"),
        method="POST",
        headers={
            "Authorization": f"token {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Language": accept_language(),
        },
    )
    try:
        with urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read().decode("utf-8"))
            return answer
    except HTTPError as error:
        raise _refusal(error) from None


def _refusal(error: HTTPError) -> Refused:
    try:
        document = json.loads(error.read().decode("utf-8", "replace"))
    except ValueError:
        document = {}
    if not isinstance(document, dict):
        document = {}
    index = document.get("index")
    return Refused(
        error.code,
        str(document.get("reason") or "http_error"),
        str(document.get("message") or error.reason),
        index if isinstance(index, int) else None,
    )


@dataclass(frozen=True)
class CsvRow:
    line: int
    score: dict[str, Any]


def _number(text: str, column: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"line {line}: {column} is not a number: {text!r}") from None


def _final(text: str, line: int) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"line {line}: final must be true or false: {text!r}")


def read_csv(stream: TextIO, *, user_column: str = "user", default_final: bool = True) -> Iterator[CsvRow]:
    """The scores of a CSV with a header row (see the module's docstring)."""
    reader = csv.DictReader(stream)
    missing = {user_column, "assignment", "score"} - set(reader.fieldnames or ())
    if missing:
        raise UsageError(f"the CSV has no column {', '.join(sorted(missing))} (its header: {reader.fieldnames})")
    for row in reader:
        line = reader.line_num
        score: dict[str, Any] = {
            "user": (row.get(user_column) or "").strip(),
            "assignment": (row.get("assignment") or "").strip(),
            "score": _number(row.get("score") or "", "score", line),
            "final": _final(row["final"], line) if (row.get("final") or "").strip() else default_final,
        }
        if (row.get("max_score") or "").strip():
            score["max_score"] = _number(row["max_score"], "max_score", line)
        yield CsvRow(line, score)


def _batches(rows: Iterator[CsvRow]) -> Iterator[list[CsvRow]]:
    batch: list[CsvRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(
        prog="jupyter-lti-score",
        description="Submit learners' scores to JupyterHub, which sends them to their LTI platforms' gradebooks.",
        epilog="The assignment is the LTI link's ID, else its title, else the address it opened.",
    )
    parse.add_argument(
        "--hub-url",
        default=os.environ.get("JUPYTERHUB_API_URL", ""),
        help="the hub's URL, e.g. https://hub.example.org/ (default: $JUPYTERHUB_API_URL)",
    )
    parse.add_argument(
        "--token-env",
        default="JUPYTERHUB_API_TOKEN",
        metavar="NAME",
        help="environment variable holding the API token (default: JUPYTERHUB_API_TOKEN)",
    )
    parse.add_argument("--csv", metavar="FILE", help="read the scores from a CSV file ('-': standard input)")
    parse.add_argument("--user-column", default="user", help="the CSV's column of hub user names (default: user)")
    parse.add_argument(
        "--skip-unmatched",
        action="store_true",
        help="leave out (and report) the rows of learners who never launched the assignment, and send the others",
    )
    parse.add_argument("--max-score", type=float, default=1.0, help="the score's maximum (default: 1)")
    progress = parse.add_mutually_exclusive_group()
    progress.add_argument("--final", dest="final", action="store_true", default=True, help="a final grade (default)")
    progress.add_argument("--in-progress", dest="final", action="store_false", help="a grade that may still change")
    parse.add_argument("user", nargs="?", help="the hub user")
    parse.add_argument("assignment", nargs="?", help="the assignment")
    parse.add_argument("score", nargs="?", type=float, help="the score given")
    return parse


def _single(args: argparse.Namespace) -> list[CsvRow]:
    if args.user is None or args.assignment is None or args.score is None:
        raise UsageError("give USER ASSIGNMENT SCORE, or --csv FILE")
    score = {"user": args.user, "assignment": args.assignment, "score": args.score, "max_score": args.max_score}
    return [CsvRow(0, {**score, "final": args.final})]


def submit(url: str, token: str, rows: list[CsvRow], out: TextIO, err: TextIO, *, skip_unmatched: bool) -> int:
    """Send the rows in batches and print what the hub accepted; how many rows were skipped
    (``skip_unmatched``: a row the hub refused as ``SKIPPABLE`` is left out, the rest sent again)."""
    skipped = 0
    for batch in _batches(iter(rows)):
        while batch:
            try:
                answer = post_scores(url, token, [row.score for row in batch])
            except Refused as refused:
                row = batch[refused.index] if refused.index is not None and 0 <= refused.index < len(batch) else None
                refused.line = row.line if row is not None else 0
                if row is None or not skip_unmatched or refused.reason not in SKIPPABLE:
                    raise
                print(f"jupyter-lti-score: skipped, {refused.describe()}", file=err)
                batch = [other for other in batch if other is not row]
                skipped += 1
                continue
            for item in answer.get("scores", []):
                states = ", ".join(f"{d['service']} {d['state']}" for d in item.get("deliveries", []))
                print(f"{item.get('user')}\t{item.get('assignment')}\t{states}", file=out)
            print(f"{len(batch)} score(s) accepted", file=err)
            break
    return skipped


def _open_csv(path: str) -> TextIO:
    if path == "-":
        return sys.stdin
    try:
        return open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed by the caller's with
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror}") from None


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    args = parser().parse_args(argv)
    try:
        if not args.hub_url.startswith(("http://", "https://")):
            raise UsageError("--hub-url must be the hub's http(s) URL")
        token = os.environ.get(args.token_env, "")
        if not token:
            raise UsageError(f"no API token in ${args.token_env}")
        if args.csv:
            if args.user is not None:
                raise UsageError("give either --csv or USER ASSIGNMENT SCORE, not both")
            with _open_csv(args.csv) as stream:  # read whole: a CSV error sends nothing
                rows = list(read_csv(stream, user_column=args.user_column, default_final=args.final))
        else:
            rows = _single(args)
        skipped = submit(scores_url(args.hub_url), token, rows, out, err, skip_unmatched=args.skip_unmatched)
    except UsageError as error:
        print(f"jupyter-lti-score: {error}", file=err)
        return EXIT_USAGE
    except Refused as refused:
        print(f"jupyter-lti-score: {refused.describe()}", file=err)
        return EXIT_UNREACHABLE if refused.status >= 500 else EXIT_REFUSED
    except (OSError, ValueError) as error:  # URLError, timeouts, a reply that is not JSON
        reason = error.reason if isinstance(error, URLError) else error
        print(f"jupyter-lti-score: the hub could not be reached: {reason}", file=err)
        return EXIT_UNREACHABLE
    return EXIT_REFUSED if skipped else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
