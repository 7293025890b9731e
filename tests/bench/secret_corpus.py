"""The secrets benchmark's corpus: real secret shapes and look-alikes, each in a file context.

Every value is synthetic, in the real format, made here from a seeded generator: this source
holds only prefixes (themselves look-alikes), so no scanner finds a secret in it. A real case
names the line its secret is on (the first line holding ``needle``) and the rule expected there;
a look-alike is a false positive when anything at all is reported in its file.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"
URLSAFE = ALNUM + "-_"


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    content: str
    needle: str = ""  # real cases: marks the secret's line
    rule: str = ""  # real cases: the Triloop rule id expected on that line

    @property
    def line(self) -> int:
        return next(i for i, text in enumerate(self.content.split("\n"), 1) if self.needle in text)


class Gen:
    def __init__(self, seed: int = 20261203) -> None:
        self.r = random.Random(seed)

    def s(self, n: int, alphabet: str = ALNUM) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def b64(self, n: int) -> str:
        return base64.b64encode(self.r.randbytes(n)).decode()

    def pem(self, kind: str, lines: int = 12, indent: str = "") -> str:
        body = [self.b64(48) for _ in range(lines)]
        block = [f"-----BEGIN {kind}-----", *body, f"-----END {kind}-----"]
        return "\n".join(indent + line for line in block)

    def jwt(self) -> str:
        def part(obj: dict[str, object]) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

        claims = {"sub": self.s(12), "iat": 1764720000, "role": "admin"}
        header = {"alg": "HS256", "typ": "JWT"}
        return f"{part(header)}.{part(claims)}.{self.s(43, URLSAFE)}"


def notebook(*cells: str, outputs: list[dict[str, object]] | None = None) -> str:
    """An nbformat 4 notebook as Jupyter writes it (one JSON string per source line)."""
    body = [
        {
            "cell_type": "code",
            "execution_count": n,
            "id": f"c{n:07x}",
            "metadata": {},
            "outputs": outputs or [],
            "source": [line + "\n" for line in cell.split("\n")],
        }
        for n, cell in enumerate(cells, 1)
    ]
    doc = {"cells": body, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4}
    return json.dumps({**doc, "nbformat_minor": 5}, indent=1) + "\n"


def real(g: Gen) -> list[Case]:
    ghp, gho, ghs = "ghp_" + g.s(36), "gho_" + g.s(36), "ghs_" + g.s(36)
    pat = "github_pat_" + g.s(22) + "_" + g.s(59)
    slack_bot = f"xoxb-{g.s(11, '0123456789')}-{g.s(13, '0123456789')}-{g.s(24)}"
    digits = "0123456789"
    slack_user = f"xoxp-{g.s(11, digits)}-{g.s(12, digits)}-{g.s(13, digits)}-{g.s(32, HEX)}"
    webhook = f"https://hooks.slack.com/services/T{g.s(8).upper()}/B{g.s(10).upper()}/{g.s(24)}"
    aws_id, aws_secret = "AKIA" + g.s(16, string.ascii_uppercase + "234567"), g.s(40, ALNUM + "/+")
    pw1, pw2, pw3 = g.s(9) + "!" + g.s(6), g.s(20), g.s(18)
    jwt1, jwt2, stripe = g.jwt(), g.jwt(), "sk_live_" + g.s(99)
    gsa = json.dumps({"type": "service_account", "private_key": g.pem("PRIVATE KEY") + "\n"})
    bundle = "var a=" + ";".join(f"f{i}(x{i})" for i in range(2500))
    c = Case
    return [
        c(
            "github ghp_, neutral name",
            "src/app/settings.py",
            f'value = "{ghp}"\n',
            ghp,
            "secrets.github-token",
        ),
        c(
            "github gho_ in tests/",
            "tests/test_client.py",
            f'def test_me():\n    client = Client(auth="{gho}")\n    assert client.me()\n',
            gho,
            "secrets.github-token",
        ),
        c(
            "github ghs_ in YAML",
            "deploy/values.yaml",
            f"env:\n  GH_AUTH: {ghs}\n",
            ghs,
            "secrets.github-token",
        ),
        c("github fine-grained PAT in .env", ".env", f"GH={pat}\n", pat, "secrets.github-token"),
        c(
            "github token despite an allowlist pragma",
            "src/sync.py",
            f'value = "{ghp[:-1]}Q"  # pragma: allowlist secret\n',
            ghp[:-1],
            "secrets.github-token",
        ),
        c(
            "github token in a URL (.git-credentials)",
            ".git-credentials",
            f"https://octocat:{ghs[:-2]}zz@github.com\n",
            ghs[:-2],
            "secrets.github-token",
        ),
        c(
            "slack bot token in JS",
            "src/bot.js",
            f'const web = new WebClient("{slack_bot}");\n',
            slack_bot,
            "secrets.slack-token",
        ),
        c(
            "slack user token in a notebook",
            "notebooks/report.ipynb",
            notebook("import slack_sdk", f'client = slack_sdk.WebClient(token="{slack_user}")'),
            slack_user,
            "secrets.slack-token",
        ),
        c(
            "slack webhook",
            "scripts/notify.py",
            f'URL = "{webhook}"\nrequests.post(URL, json={{"text": "done"}})\n',
            webhook[:40],
            "secrets.slack-token",
        ),
        c(
            "google api key in HTML",
            "web/index.html",
            f'<script src="https://maps.googleapis.com/maps/api/js?key=AIza{g.s(35, URLSAFE)}">'
            "</script>\n",
            "AIza",
            "secrets.google-api-key",
        ),
        c(
            "google oauth client secret",
            "client_secret.json",
            json.dumps(
                {
                    "installed": {
                        "client_id": g.s(12, "0123456789") + "-x.apps.googleusercontent.com",
                        "client_secret": "GOCSPX-" + g.s(28, URLSAFE),
                    }
                }
            ),
            "GOCSPX-",
            "secrets.google-oauth-secret",
        ),
        c(
            "stripe sk_live_ in Ruby",
            "app/payments.rb",
            f"Stripe.api_key = '{stripe}'\n",
            stripe,
            "secrets.stripe-key",
        ),
        c(
            "stripe rk_live_ in a dotenv",
            ".env.production",
            f"STRIPE_RESTRICTED=rk_live_{g.s(24)}\n",
            "rk_live_",
            "secrets.stripe-key",
        ),
        c(
            "twilio api key",
            "src/sms.py",
            f'twilio = Client("SK{g.s(32, HEX)}", api_secret)\n',
            "SK",
            "secrets.twilio-key",
        ),
        c(
            "sendgrid key",
            "src/mail.py",
            f'sg = SendGridAPIClient("SG.{g.s(22, URLSAFE)}.{g.s(43, URLSAFE)}")\n',
            "SG.",
            "secrets.sendgrid-key",
        ),
        c(
            "npm token in .npmrc",
            ".npmrc",
            f"//registry.npmjs.org/:_authToken=npm_{g.s(36)}\n",
            "npm_",
            "secrets.npm-token",
        ),
        c(
            "pypi token in .pypirc",
            ".pypirc",
            f"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc{g.s(80, URLSAFE)}\n",
            "pypi-",
            "secrets.pypi-token",
        ),
        c(
            "gitlab PAT in a shell script",
            "scripts/release.sh",
            f'curl --header "PRIVATE-TOKEN: glpat-{g.s(20, URLSAFE)}" https://gitlab.com/api/v4/projects\n',
            "glpat-",
            "secrets.gitlab-token",
        ),
        c(
            "gitlab runner token in TOML",
            ".gitlab-runner/config.toml",
            f'[[runners]]\n  token = "glrt-{g.s(20, URLSAFE)}"\n',
            "glrt-",
            "secrets.gitlab-token",
        ),
        c(
            "openai project key",
            "src/llm.py",
            f'client = openai.OpenAI("sk-proj-{g.s(64)}T3BlbkFJ{g.s(64)}")\n',
            "sk-proj-",
            "secrets.openai-key",
        ),
        c(
            "anthropic key in a notebook",
            "notebooks/eval.ipynb",
            notebook(
                "import anthropic",
                f'client = anthropic.Anthropic(api_key="sk-ant-api03-{g.s(93, URLSAFE)}AA")',
            ),
            "sk-ant-",
            "secrets.anthropic-key",
        ),
        c(
            "azure storage connection string",
            "appsettings.json",
            json.dumps(
                {
                    "ConnectionStrings": {
                        "Blob": "DefaultEndpointsProtocol=https;AccountName=acme;"
                        f"AccountKey={g.b64(64)};EndpointSuffix=core.windows.net"
                    }
                },
                indent=2,
            ),
            "AccountKey",
            "secrets.azure-storage-key",
        ),
        c(
            "aws access key id",
            "config/aws.ini",
            f"[default]\naws_access_key_id = {aws_id}\nregion = eu-west-1\n",
            aws_id,
            "secrets.aws-access-key",
        ),
        c(
            "aws secret access key",
            "src/storage.py",
            f's3 = boto3.client("s3", aws_access_key_id=ID, aws_secret_access_key="{aws_secret}")'
            "\n",
            aws_secret,
            "secrets.aws-access-key",
        ),
        c(
            "mailgun key in PHP",
            "app/Mail.php",
            f"<?php\n$mg = Mailgun::create('key-{g.s(32, HEX)}');\n",
            "key-",
            "secrets.mailgun-key",
        ),
        c(
            "square access token",
            "src/square.js",
            f'const auth = {{ accessToken: "EAAA{g.s(60, URLSAFE)}" }};\n'
            "const square = new Client({ bearerAuthCredentials: auth });\n",
            "EAAA",
            "secrets.square-token",
        ),
        c(
            "square oauth secret",
            "config/square.yml",
            f"oauth:\n  app_secret: sq0csp-{g.s(43, URLSAFE)}\n",
            "sq0csp-",
            "secrets.square-token",
        ),
        c(
            "discord bot token",
            "bot/main.py",
            f'bot.run("M{g.s(25)}.{g.s(6)}.{g.s(38, URLSAFE)}")\n',
            "bot.run",
            "secrets.discord-token",
        ),
        c(
            "telegram bot token in .env",
            ".env.local",
            f"BOT={g.s(10, '0123456789')}:AA{g.s(33, URLSAFE)}\n",
            "BOT=",
            "secrets.telegram-token",
        ),
        c(
            "shopify admin token",
            "config/shop.yml",
            f"shopify:\n  admin: shpat_{g.s(32, HEX)}\n",
            "shpat_",
            "secrets.shopify-token",
        ),
        c(
            "digitalocean token in terraform",
            "infra/main.tf",
            f'provider "digitalocean" {{\n  token = "dop_v1_{g.s(64, HEX)}"\n}}\n',
            "dop_v1_",
            "secrets.digitalocean-token",
        ),
        c(
            "hugging face token in a notebook",
            "notebooks/train.ipynb",
            notebook(f"!huggingface-cli login --token hf_{g.s(34, string.ascii_letters)}"),
            "hf_",
            "secrets.huggingface-token",
        ),
        c(
            "mailchimp key",
            "src/newsletter.py",
            f'mc.set_config({{"api_key": "{g.s(32, HEX)}-us6"}})\n',
            "-us6",
            "secrets.mailchimp-key",
        ),
        c(
            "jwt in a test's header",
            "tests/test_auth.py",
            f'HEADERS = {{"Authorization": "Bearer {jwt1}"}}\n',
            jwt1,
            "secrets.jwt",
        ),
        c(
            "jwt in docs",
            "docs/api.md",
            f"```\ncurl -H 'Authorization: Bearer {jwt2}' https://api.acme.io/v1/me\n```\n",
            jwt2,
            "secrets.jwt",
        ),
        c(
            "password in a database URL (dotenv)",
            "deploy/.env",
            f"DATABASE_URL=postgres://app:{pw1}@db.internal:5432/app\n",
            pw1,
            "secrets.url-password",
        ),
        c(
            "password in an index URL (Dockerfile)",
            "Dockerfile",
            "FROM python:3.11-slim\n"
            f"RUN pip install --index-url https://deploy:{pw2}@pypi.acme.internal/simple app\n",
            pw2,
            "secrets.url-password",
        ),
        c(
            "password in a redis URL, no user",
            "src/cache.py",
            f'r = redis.from_url("redis://:{pw3}@cache:6379/0")\n',
            pw3,
            "secrets.url-password",
        ),
        c(
            "password in a lock file's URL",
            "package-lock.json",
            json.dumps(
                {
                    "packages": {
                        "node_modules/left-pad": {
                            "resolved": f"https://ci:{pw3[::-1]}@npm.acme.internal/left-pad/-/left-pad-1.3.0.tgz"
                        }
                    }
                },
                indent=2,
            ),
            "resolved",
            "secrets.url-password",
        ),
        c(
            "RSA private key",
            "deploy/server.key",
            g.pem("RSA PRIVATE KEY") + "\n",
            "BEGIN",
            "secrets.private-key",
        ),
        c(
            "OpenSSH private key in tests/",
            "tests/fixtures/id_ed25519",
            g.pem("OPENSSH PRIVATE KEY", 5) + "\n",
            "BEGIN",
            "secrets.private-key",
        ),
        c(
            "private key in a service-account JSON",
            "gcp-sa.json",
            gsa,
            "BEGIN",
            "secrets.private-key",
        ),
        c(
            "EC private key in a YAML block",
            "helm/values.yaml",
            "tls:\n  key: |\n" + g.pem("EC PRIVATE KEY", 3, "    ") + "\n",
            "BEGIN",
            "secrets.private-key",
        ),
        c(
            "password in YAML",
            "config/database.yml",
            f"production:\n  adapter: postgresql\n  password: {g.s(16)}\n",
            "password",
            "secrets.hardcoded-credential",
        ),
        c(
            "password in Python settings",
            "src/app/db.py",
            f'DB_PASSWORD = "{g.s(14)}"\n',
            "DB_PASSWORD",
            "secrets.hardcoded-credential",
        ),
        c(
            "django secret key",
            "mysite/settings.py",
            f'SECRET_KEY = "django-insecure-{g.s(50, ALNUM + "!@#%^&*(-_=+)")}"\n',
            "SECRET_KEY",
            "secrets.hardcoded-credential",
        ),
        c(
            "aws key in a file named like an image",
            "assets/logo.png",
            f"aws_access_key_id={aws_id[:-1]}Z\n",
            "aws_access_key_id",
            "secrets.aws-access-key",
        ),
        c(
            "stripe key deep in a minified bundle",
            "dist/app.min.js",
            f'{bundle};var k="sk_live_{g.s(24)}";{bundle}\n',
            "sk_live_",
            "secrets.stripe-key",
        ),
        c(
            "token under an access_token name",
            "src/app/client.py",
            f'ACCESS_TOKEN = "{g.s(32, HEX)}"\n',
            "ACCESS_TOKEN",
            "secrets.hardcoded-credential",
        ),
        c(
            "auth token in JSON config",
            "config/service.json",
            json.dumps(
                {"service": {"url": "https://api.acme.io", "auth_token": g.s(40)}}, indent=2
            ),
            "auth_token",
            "secrets.hardcoded-credential",
        ),
        c(
            "azure AD client secret",
            "src/graph.py",
            f'app = ConfidentialClientApplication(CLIENT, "{g.s(3)}8Q~{g.s(34, URLSAFE)}")\n',
            "8Q~",
            "secrets.azure-client-secret",
        ),
        c(
            "base64 password in a k8s Secret",
            "k8s/secret.yaml",
            f"kind: Secret\ndata:\n  password: {base64.b64encode(g.s(14).encode()).decode()}\n",
            "password",
            "secrets.hardcoded-credential",
        ),
    ]


def lookalikes(g: Gen, listed: str) -> list[Case]:
    """The look-alikes; ``listed`` is a real case's secret, for the baseline to hash."""
    sha, digest, uuid = (
        g.s(40, HEX),
        g.s(64, HEX),
        f"{g.s(8, HEX)}-{g.s(4, HEX)}-4{g.s(3, HEX)}-a{g.s(3, HEX)}-{g.s(12, HEX)}",
    )
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + g.r.randbytes(600)).decode()
    c = Case
    return [
        c("git SHA", "src/app/build_info.py", f'COMMIT = "{sha}"\n'),
        c(
            "pinned action SHA",
            ".github/workflows/ci.yml",
            f"steps:\n  - uses: actions/checkout@{g.s(40, HEX)}  # v4.2.2\n",
        ),
        c("pip hash", "requirements.txt", f"requests==2.34.2 \\\n    --hash=sha256:{digest}\n"),
        c("image digest", "Dockerfile.base", f"FROM python:3.11-slim@sha256:{g.s(64, HEX)}\n"),
        c(
            "npm integrity",
            "web/package-lock.json",
            json.dumps(
                {
                    "packages": {
                        "node_modules/left-pad": {
                            "version": "1.3.0",
                            "resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
                            "integrity": "sha512-" + g.b64(64),
                        }
                    }
                },
                indent=2,
            ),
        ),
        c(
            "subresource integrity",
            "web/base.html",
            f'<script src="/app.js" integrity="sha384-{g.b64(48)}" crossorigin="anonymous">'
            "</script>\n",
        ),
        c("uuid", "src/app/ids.py", f'REQUEST_ID = "{uuid}"\n'),
        c("uuid in JSON", "data/widgets.json", json.dumps([{"id": uuid[::-1], "name": "widget"}])),
        c(
            "base64 image in HTML",
            "web/logo.html",
            f'<img alt="logo" src="data:image/png;base64,{png}">\n',
        ),
        c(
            "base64 image in a notebook's output",
            "notebooks/plot.ipynb",
            notebook(
                "df.plot()",
                outputs=[
                    {"output_type": "display_data", "data": {"image/png": png}, "metadata": {}}
                ],
            ),
        ),
        c("plain text in base64", "src/app/greeting.py", 'GREETING_B64 = "aGVsbG8gd29ybGQ="\n'),
        c(
            "${TOKEN} reference",
            "deploy/app.yaml",
            "env:\n  token: ${GITHUB_TOKEN}\n  api_key: ${API_KEY}\n",
        ),
        c(
            "os.environ reference",
            "src/app/pay.py",
            'api_key = os.environ["STRIPE_API_KEY"]\npassword = os.getenv("DB_PASSWORD")\n',
        ),
        c(
            "actions secrets reference",
            ".github/workflows/release.yml",
            "with:\n  password: ${{ secrets.PYPI_API_TOKEN }}\n",
        ),
        c(
            "terraform variable",
            "infra/db.tf",
            'resource "aws_db_instance" "db" {\n  password = var.db_password\n}\n',
        ),
        c(
            "URL without a password",
            ".env.ci",
            "DATABASE_URL=postgres://app@db.internal:5432/app\n",
        ),
        c(
            "URL with a placeholder",
            "README.md",
            "Set `DATABASE_URL=postgres://user:<password>@localhost:5432/db`.\n",
        ),
        c(
            "URL with an env var",
            "docker-compose.yml",
            "services:\n  app:\n    environment:\n      DATABASE_URL: postgres://app:${POSTGRES_PASSWORD}@db:5432/app\n",
        ),
        c(
            "example dotenv",
            ".env.example",
            "STRIPE_SECRET_KEY=\nDATABASE_URL=postgres://user:password@localhost/db\n",
        ),
        c(
            "truncated prefixes in docs",
            "docs/tokens.md",
            "Personal access tokens start with `ghp_`, Stripe secret keys with `sk_live_`\n"
            "and Slack bot tokens with `xoxb-`; JWTs look like `eyJ...`.\n",
        ),
        c(
            "stripe publishable key",
            "web/checkout.js",
            f'const stripe = Stripe("pk_live_{g.s(24)}");\n',
        ),
        c(
            "version strings",
            "src/app/__init__.py",
            '__version__ = "2.14.4"\nBUILD = "v2024.10.1-rc1+build.5"\n',
        ),
        c(
            "xxxx placeholder in a test",
            "tests/test_login.py",
            'def test_login():\n    assert login("alice", password="xxxxxxxx") is False\n',
        ),
        c(
            "your-api-key-here",
            "examples/quickstart.py",
            'client = Client(api_key="your-api-key-here")\n',
        ),
        c("masked password", "docs/config.md", '```yaml\ndatabase:\n  password: "********"\n```\n'),
        c(
            "lorem ipsum",
            "docs/lorem.txt",
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\n",
        ),
        c(
            "hex colours",
            "web/styles.css",
            ".btn { color: #ff5733; background: #1f77b4; border-color: #2ca02c; }\n",
        ),
        c(
            "AWS documentation keys",
            "docs/aws.md",
            "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        ),
        c("public key block", "keys/public.pem", g.pem("PUBLIC KEY", 6) + "\n"),
        c("certificate", "certs/ca.crt", g.pem("CERTIFICATE", 10) + "\n"),
        c(
            "PEM header in parser code",
            "src/app/pem.py",
            "def is_key(text: str) -> bool:\n"
            '    return text.startswith("-----BEGIN RSA PRIVATE KEY-----")\n',
        ),
        c(
            "password form field",
            "src/app/forms.py",
            "password = forms.CharField(widget=forms.PasswordInput)\nPASSWORD_MIN_LENGTH = 12\n",
        ),
        c(
            "secret accessor",
            "src/app/vault.py",
            'def get_secret(name: str) -> str:\n    return vault.read(f"secret/{name}")["data"]\n',
        ),
        c(
            "annotations and secret names",
            "src/app/config.py",
            'password: str\nsecret_name: str = "db-credentials"\ntoken_url = "https://oauth2.googleapis.com/token"\n',
        ),
        c(
            "ssh public key",
            ".ssh/authorized_keys",
            f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{g.b64(270)} alice@laptop\n",
        ),
        c(
            "ARN with an account id",
            "infra/iam.json",
            json.dumps({"Principal": {"AWS": "arn:aws:iam::123456789012:role/deploy"}}),
        ),
        c(
            "slack channel ids",
            "src/app/alerts.py",
            'CHANNEL = "C024BE91L"\nONCALL = "U0G9QF9C6"\n',
        ),
        c(
            "k8s secret reference",
            "k8s/deployment.yaml",
            "env:\n  - name: DB_PASSWORD\n"
            "    valueFrom:\n      secretKeyRef: {name: db, key: password}\n",
        ),
        c(
            "notebook with ids and counts",
            "notebooks/explore.ipynb",
            notebook("import pandas as pd", 'df = pd.read_csv("data.csv")'),
        ),
        c(
            "XXXX placeholder key",
            "tests/fixtures/aws.cfg",
            "[default]\naws_access_key_id = AKIAXXXXXXXXXXXXXXXX\n",
        ),
        c(
            "a detect-secrets baseline",
            ".secrets.baseline",
            json.dumps(baseline(listed), indent=2),
        ),
        c(
            "token-ish names that hold no token",
            "src/app/model.py",
            'tokenizer = "google/flan-t5-base"\ntoken_type = "Bearer"\nmax_tokens = 4096\n',
        ),
    ]


def baseline(secret: str) -> dict[str, object]:
    """What ``detect-secrets scan`` writes: hashes of the secrets it was told to ignore.

    It lists the first real case's secret: that case must be reported all the same.
    """
    entry = {"type": "GitHub Token", "filename": "src/app/settings.py", "line_number": 1}
    entry |= {"hashed_secret": hashlib.sha1(secret.encode()).hexdigest(), "is_verified": False}
    return {"version": "1.5.0", "results": {"src/app/settings.py": [entry]}}


def corpus() -> tuple[list[Case], list[Case]]:
    gen = Gen()
    secrets = real(gen)
    return secrets, lookalikes(gen, secrets[0].needle)
