"""The secret detectors and how one file's lines are scanned (standard library + detect-secrets).

secret_scan.py (beside this file, in the image too) walks the checkout and calls
:func:`scan_lines` for each file. The detectors are detect-secrets' own plugins, each mapped to
a stable Triloop rule id, plus Triloop's RegexBasedDetectors for shapes detect-secrets 1.5
lacks. Which detect-secrets filters apply, and why, is in secret_scan.py's docstring.
"""

from __future__ import annotations

import bisect
import hashlib
import importlib
import itertools
import re
import time
from typing import Any

SHAPES = {  # detect-secrets plugin -> Triloop rule id
    "aws.AWSKeyDetector": "secrets.aws-access-key",
    "artifactory.ArtifactoryDetector": "secrets.artifactory-token",
    "azure_storage_key.AzureStorageKeyDetector": "secrets.azure-storage-key",
    "basic_auth.BasicAuthDetector": "secrets.url-password",
    "cloudant.CloudantDetector": "secrets.cloudant-credential",
    "discord.DiscordBotTokenDetector": "secrets.discord-token",
    "github_token.GitHubTokenDetector": "secrets.github-token",
    "gitlab_token.GitLabTokenDetector": "secrets.gitlab-token",
    "ibm_cloud_iam.IbmCloudIamDetector": "secrets.ibm-cloud-key",
    "ibm_cos_hmac.IbmCosHmacDetector": "secrets.ibm-cloud-key",
    "jwt.JwtTokenDetector": "secrets.jwt",
    "keyword.KeywordDetector": "secrets.hardcoded-credential",
    "mailchimp.MailchimpDetector": "secrets.mailchimp-key",
    "npm.NpmDetector": "secrets.npm-token",
    "openai.OpenAIDetector": "secrets.openai-key",
    "private_key.PrivateKeyDetector": "secrets.private-key",
    "pypi_token.PypiTokenDetector": "secrets.pypi-token",
    "sendgrid.SendGridDetector": "secrets.sendgrid-key",
    "slack.SlackDetector": "secrets.slack-token",
    "softlayer.SoftlayerDetector": "secrets.softlayer-key",
    "square_oauth.SquareOAuthDetector": "secrets.square-token",
    "stripe.StripeDetector": "secrets.stripe-key",
    "telegram_token.TelegramBotTokenDetector": "secrets.telegram-token",
    "twilio.TwilioKeyDetector": "secrets.twilio-key",
}
EXTRA = {  # shapes detect-secrets 1.5 lacks, as Triloop's own RegexBasedDetectors
    "secrets.github-token": (r"github_pat_[A-Za-z0-9_]{82}",),
    "secrets.google-api-key": (r"AIza[0-9A-Za-z_\-]{35}",),
    "secrets.google-oauth-secret": (r"GOCSPX-[A-Za-z0-9_\-]{28}",),
    "secrets.anthropic-key": (r"sk-ant-[a-z]{3,8}\d{0,2}-[A-Za-z0-9_\-]{80,}",),
    "secrets.openai-key": (r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}",),
    "secrets.shopify-token": (r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}",),
    "secrets.digitalocean-token": (r"do[opr]_v1_[a-f0-9]{64}",),
    "secrets.mailgun-key": (r"(?<![\w-])key-[0-9a-f]{32}(?!\w)",),
    "secrets.square-token": (r"sq0atp-[0-9A-Za-z_\-]{22}", r"EAAA[A-Za-z0-9_\-]{60}"),
    "secrets.slack-token": (r"xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+",),
    "secrets.npm-token": (r"npm_[A-Za-z0-9]{36}",),
    "secrets.huggingface-token": (r"hf_[A-Za-z]{34}",),
    "secrets.azure-client-secret": (r"(?<![\w~.-])[\w~.-]{3}\dQ~[\w~.-]{31,34}(?![\w~.-])",),
    "secrets.private-key": (r"BEGIN ENCRYPTED PRIVATE KEY", r"PuTTY-User-Key-File-3"),
    # RFC 3986 allows sub-delimiters (!$&'()*+,;=) in a password; detect-secrets' rule does not.
    "secrets.url-password": (r"://[^\s:/?#\[\]@\"'`<>{}]*:([^\s/?#\[\]@\"'`<>{}]+)@(?=[\w\[.\-])",),
}
KEYWORD = "secrets.hardcoded-credential"
# Names detect-secrets' keyword list lacks (access_token, credentials, auth), quoted values.
EXTRA[KEYWORD] = (
    r"(?i)(?:token|credentials?|auth)[\"']?\s*(?:=|:|:=|=>)\s*[\"']([\w+/=.~-]{16,})[\"']",
)
GENERIC = {KEYWORD, "secrets.url-password"}  # rules whose values get the placeholder filters
PLACEHOLDER = re.compile(
    r"(?i)^(?:changeme|change_me|password|passwd|pass|secret|token|redacted|dummy|test|none|"
    r"null|true|false|todo|tbd|masked|hidden)$|example|placeholder|your[-_ ]|^\$|[<>{}]|%s|%\("
)
REFERENCE = re.compile(r"^[\w.\-]+[\[(].*[\])]$")  # get_secret(), os.environ["X"]
REPEATED = re.compile(r"(\w)\1{7}")  # AKIAXXXXXXXXXXXXXXXX, ghp_000000...: a placeholder
DIGEST_NAME = re.compile(r"(?i)(?:hash|digest|checksum|fingerprint|sha\d*|md5)[\w.-]*[\"']?\W*$")
MATERIAL = re.compile(r"[A-Za-z0-9+/=]{16,}")  # a line of a private key's base64 body
HEADER = re.compile(r"^[\w-]+: ")  # Proc-Type: 4,ENCRYPTED; Public-Lines: 6
END = re.compile(r"-----END|Private-MAC:")
CONFIG_STYLE = (".sh", ".bash", ".zsh", ".env", ".properties", ".service", ".tfvars")
# Every entry of detect-secrets' keyword list (api_key, db_pass, passwd, pwd, secret,
# contraseña, ...) holds one of these: a line without them cannot match the keyword detector.
KEYWORDS = re.compile(r"(?i)(?:key|pass|pwd|secret|contrase)")
# Slow leading parts of detect-secrets' patterns: lookbehinds tried at every position, and the
# npm rule's "//.+" that backtracks quadratically on a line of slashes.
LEADING = ("(?:(?<=\\W)|(?<=^))", '(?:\\s|=|:|"|^)', "\\/\\/.+")
PIECE, OVERLAP = 4096, 1024  # any value up to OVERLAP characters lies whole in some piece
BLOCK = 1 << 16  # characters of short lines the gates see at once


class OutOfBudget(Exception):
    """The time budget ran out: what is left is reported unscanned."""


class Rules:
    """Every detector with its rule id, and the gates that pick the lines worth scanning.

    The gates are the detectors' own patterns (the keyword detector's keywords), run over
    many lines at once with ``re.MULTILINE``: a line a detector's gates do not touch cannot
    match that detector, so each line gets only the detectors whose gates touched it (lines
    with escapes, whose unescaped form may differ, and long lines get all). That saves most of
    the time and changes no result.
    """

    def __init__(self) -> None:
        from detect_secrets.plugins import keyword
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.settings import get_settings

        # Verification calls the providers' APIs: never (the default settings leave it off).
        verify = "detect_secrets.filters.common.is_ignored_due_to_verification_policies"
        get_settings().filters.pop(verify, None)
        self.plugins: list[tuple[str, Any]] = []
        for dotted, rule in SHAPES.items():
            module, name = dotted.rsplit(".", 1)
            plugin = getattr(importlib.import_module(f"detect_secrets.plugins.{module}"), name)
            self.plugins.append((rule, plugin()))
        for rule, patterns in EXTRA.items():
            attrs = {"secret_type": rule, "denylist": [re.compile(p) for p in patterns]}
            name = f"Triloop{len(self.plugins)}"
            self.plugins.append((rule, type(name, (RegexBasedDetector,), attrs)()))
        self.gates: list[tuple[int, re.Pattern[str]]] = []  # (plugin index, gate)
        for at, (_, plugin) in enumerate(self.plugins):
            if isinstance(plugin, keyword.KeywordDetector):
                self.gates.append((at, KEYWORDS))
            else:
                self.gates += [(at, gate(p)) for p in plugin.denylist]


def gate(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """A detector pattern for many lines at once; a slow leading context test dropped.

    Dropping a condition on what precedes the match can only let more lines through.
    """
    text = pattern.pattern
    for prefix in LEADING:
        text = text.removeprefix(prefix)
    return re.compile(text, pattern.flags | re.MULTILINE)


def value_ok(rule: str, value: str) -> bool:
    """False for values that cannot be a live credential (judged on the value alone)."""
    if "EXAMPLE" in value or REPEATED.search(value):  # AWS's documentation keys, XXXXXXXX
        return False
    if rule not in GENERIC:
        return True
    mixed = value.lower() != value != value.upper()
    return not (
        len(value) < 6
        or len(set(value.lower())) < 4
        or not (mixed or any(c.isdigit() for c in value))  # "secrets.", "SECRET_KEY"
        or any(c.isspace() for c in value)  # prose
        or PLACEHOLDER.search(value)
        or REFERENCE.match(value)
    )


def digest(rule: str, piece: str, value: str) -> bool:
    """A keyword finding whose name says it holds a digest (a baseline's ``hashed_secret``)."""
    at = piece.find(value)
    return rule == KEYWORD and at > 0 and bool(DIGEST_NAME.search(piece[max(0, at - 60) : at]))


def key_name(rel: str) -> str:
    """The file name the keyword detector picks its assignment syntax by."""
    name = rel.rsplit("/", 1)[-1].lower()
    if name.endswith(".ipynb"):
        return "cell.py"  # a notebook's code, once its JSON escapes are undone
    if name.startswith(".env") or name.endswith(CONFIG_STYLE) or "." not in name.lstrip("."):
        return "file.cfg"  # KEY=value without quotes: dotenv, shell, Dockerfile, .pypirc
    return rel


def variants(line: str) -> list[str]:
    """A line's pieces and, where it holds escapes, the pieces with those escapes undone."""
    starts = range(0, max(len(line) - OVERLAP, 1), PIECE - OVERLAP)
    pieces = [line[i : i + PIECE] for i in starts]
    for piece in list(pieces):
        if "\\" in piece:
            plain = piece.replace('\\"', '"').replace("\\'", "'").replace("\\/", "/")
            pieces += plain.replace("\\r", "").split("\\n")
    return pieces


def private_key(lines: list[str], index: int) -> str:
    """A private key's base64 body, as it follows its header line (a header alone gives "").

    After the header (and on the header's own line, where a JSON string holds the key with
    ``\\n`` escapes): blank lines until the body starts, ``Name: value`` headers (PEM's
    Proc-Type, PuTTY's Public-Lines) and base64 lines, up to END or anything else.
    """
    raw = lines[index]
    marker = "PRIVATE KEY" if "PRIVATE KEY" in raw else "PuTTY-User-Key-File-"
    rest = raw.split(marker, 1)[-1].lstrip("-").replace("\\r", "").replace("\\n", "\n")
    body: list[str] = []
    for line in [*rest.split("\n"), *lines[index + 1 : index + 200]]:
        text = END.split(line, maxsplit=1)[0].strip()
        tokens = text.strip("\"',;").strip().split()
        if tokens and all(MATERIAL.fullmatch(t) for t in tokens):
            body += tokens
        elif tokens and not HEADER.match(text):
            break
        if text != line.strip() or (body and not tokens):
            break  # the END line, or a blank line after the body
    material = "".join(body)
    return material if len(material) >= 64 else ""


def blocks(lines: list[str]) -> list[tuple[int, list[str]]]:
    """(first index, lines) runs of at most BLOCK characters, long lines blanked out."""
    found: list[tuple[int, list[str]]] = []
    first, size, run = 0, 0, list[str]()
    for index, line in enumerate(lines):
        if size > BLOCK:
            found.append((first, run))
            first, size, run = index, 0, []
        run.append(line if len(line) <= PIECE else "")
        size += min(len(line), PIECE) + 1
    return [*found, (first, run)]


def candidates(lines: list[str], rules: Rules, deadline: float) -> dict[int, set[int]]:
    """{line index: plugin indexes} for the lines some gate touches, with escapes, or long.

    The gates run over blocks of lines (a time check between blocks and gates bounds what a
    hostile file costs: some detect-secrets patterns backtrack quadratically on one line); a
    line longer than PIECE is left out of them and scanned piece by piece instead.
    """
    every = set(range(len(rules.plugins)))
    marked = {i: every for i, line in enumerate(lines) if "\\" in line or len(line) > PIECE}
    for first, run in blocks(lines):
        text = "\n".join(run)
        starts = list(itertools.accumulate((len(line) + 1 for line in run[:-1]), initial=0))
        for plugin, gate in rules.gates:
            if time.monotonic() > deadline:
                raise OutOfBudget
            for match in gate.finditer(text):
                top = bisect.bisect_right(starts, match.start()) - 1
                end = bisect.bisect_right(starts, max(match.end() - 1, match.start())) - 1
                for index in range(first + top, first + end + 1):
                    if marked.get(index) is not every:
                        marked.setdefault(index, set()).add(plugin)
    return marked


def whole_matches(plugin: Any, piece: str, reported: set[str]) -> list[str]:
    """The whole match behind each value a shape detector reported.

    detect-secrets reports a pattern's group where it has one: its GitHub rule reports "ghp"
    for every ``ghp_`` token. The fingerprint must tell tokens apart, so it hashes the match.
    """
    if not reported:
        return []
    return [
        match.group(0)
        for pattern in plugin.denylist
        for match in pattern.finditer(piece)
        if {match.group(0), *filter(None, match.groups())} & reported
    ]


def line_hits(
    lines: list[str], index: int, rel: str, rules: Rules, chosen: set[int], deadline: float
) -> list[tuple[str, str]]:
    """(rule, value) of each secret on one line, the most specific rule for each value.

    Each piece of the line goes only to the ``chosen`` detectors whose gates match it.
    """
    hits: set[tuple[str, str]] = set()
    for piece in variants(lines[index].rstrip("\r")):
        if time.monotonic() > deadline:
            raise OutOfBudget
        gated = {at for at, gate in rules.gates if at in chosen and gate.search(piece)}
        for rule, plugin in (rules.plugins[at] for at in sorted(gated)):
            name = key_name(rel) if rule == KEYWORD else rel
            found = plugin.analyze_line(filename=name, line=piece, line_number=index + 1)
            reported = {str(secret.secret_value) for secret in found}
            if rule == "secrets.private-key":
                values = [private_key(lines, index)] if reported else []
            elif rule in GENERIC:
                values = sorted(reported)  # the password or value itself
            else:
                values = whole_matches(plugin, piece, reported)
            for value in values:
                if value and value_ok(rule, value) and not digest(rule, piece, value):
                    hits.add((rule, value))
    kept: list[tuple[str, str]] = []
    for rule, value in sorted(hits, key=lambda h: (h[0] in GENERIC, -len(h[1]), h)):
        if not any(value in v or (rule in GENERIC and v in value) for _, v in kept):
            kept.append((rule, value))
    return kept


def scan_lines(
    lines: list[str], binary: bool, rel: str, rules: Rules, deadline: float
) -> list[tuple[int, str, str]]:
    """(line, rule, sha1 of the value) for each secret (line 0 in a binary file)."""
    found = []
    for index, chosen in sorted(candidates(lines, rules, deadline).items()):
        for rule, value in line_hits(lines, index, rel, rules, chosen, deadline):
            line = 0 if binary else index + 1
            found.append((line, rule, hashlib.sha1(value.encode()).hexdigest()))
    return found
