"""Prompt templates as versioned package files, rendered strictly.

Each template is a YAML file with `version`, `system` and `user` Jinja templates. Rendering uses
`StrictUndefined` (a missing variable is an error, not an empty string), and document text is only
ever inserted as a variable through the `data` filter, so a brace or a tag in a document cannot
change the template or break out of its delimiters.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib.resources import files

import jinja2
import yaml

MAX_TEXT_CHARS = 600  # what the model sees of one document; the full text stays in the output


_TAG = re.compile(r"<\s*(/?)\s*(text)", re.IGNORECASE)


def as_data(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """A document as inert data inside <text> delimiters: one line, bounded, unable to open or close its tag
    in any case or spacing (`</TEXT>`, `< /text>`)."""
    raw = str(text)
    head = raw[:limit * 4]  # a bounded slice first: splitting a 50 MB text word by word would copy all of it
    flat = " ".join(head.split())
    if len(flat) > limit or len(raw) > len(head):
        flat = flat[:limit].rstrip() + " [...]"
    return _TAG.sub(r"<\1 \2", flat)


_env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False,
                          trim_blocks=True, lstrip_blocks=True)
_env.filters["data"] = as_data


@dataclass(frozen=True)
class Prompt:
    name: str
    version: int
    system: jinja2.Template
    user: jinja2.Template
    quoted: tuple[str, ...] = ()  # the examples its system part writes in quotes ("Password reset")
    own_text: str = ""  # its system part's own words, the variables and quoted examples cut out ("|")
    template_text: str = ""  # both parts' words, examples included, the variables cut out ("|")

    def messages(self, **variables) -> list[tuple[str, str]]:
        """(role, content) pairs ready for a LangChain chat model."""
        return [("system", self.system.render(**variables).strip()), ("user", self.user.render(**variables).strip())]


@functools.cache
def load_prompt(name: str) -> Prompt:
    raw = yaml.safe_load((files(__name__) / f"{name}.yaml").read_text(encoding="utf-8"))
    return Prompt(name=name, version=int(raw["version"]), system=_env.from_string(raw["system"]),
                  user=_env.from_string(raw["user"]),
                  quoted=tuple(re.findall(r'"([^"{}]+)"', raw["system"])),
                  own_text=re.sub(r'{[{%#].*?[}%#]}|"[^"]*"', " | ", raw["system"]),
                  template_text=re.sub(r'{[{%#].*?[}%#]}', " | ", f'{raw["system"]}\n{raw["user"]}'))


def prompt_versions() -> dict[str, int]:
    """Every template's version, for run records."""
    return {p.name[:-5]: load_prompt(p.name[:-5]).version
            for p in files(__name__).iterdir() if p.name.endswith(".yaml")}
