"""Rendering touchpoints into email (subject, HTML, text) and SMS from the Jinja templates.

One ``SandboxedEnvironment`` over ``templates/`` with ``StrictUndefined`` (a missing variable
is an error, never an empty string in a customer's inbox) and autoescape for ``*.html.j2``.
Template names::

    email/<name>.subject.j2  email/<name>.html.j2  email/<name>.txt.j2  sms/<name>.txt.j2

A locale variant (``email/<name>.fr.html.j2``, or ``.fr_CA.``) wins over the default for
customers of that locale. Sent HTML has its CSS inlined, as mail clients ignore ``<style>``:
once per template file when the templates load (see ``inlined_css``), and it keeps only
http(s) links (see ``links``). The sandbox also bounds what a template may
build (see ``sandbox``): a template over the limits fails its message with TemplateTooLarge.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

import css_inline
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateNotFound,
    Undefined,
    pass_context,
)
from jinja2.runtime import Context

from postpurchase.exceptions import ConfigError
from postpurchase.messages.inlined_css import (
    NotInlinable,
    inline_source,
    same_document,
    stylesheet,
)
from postpurchase.messages.links import strip_unsafe_links
from postpurchase.messages.sandbox import BoundedSandbox, render_bounded
from postpurchase.messages.sms_segments import SegmentCount, count_segments
from postpurchase.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = PROJECT_ROOT / "templates"
OPT_OUT_LINE = "Reply STOP to opt out."

_GREETINGS = {  # (with a first name, without one): a missing name never shows as "Hi ,"
    "en": ("Hi {name},", "Hello,"),
    "fr": ("Bonjour {name},", "Bonjour,"),
    "de": ("Hallo {name},", "Hallo,"),
}


# A named tuple, not a frozen dataclass: made for every email, and cheaper to make.
class RenderedEmail(NamedTuple):
    subject: str
    html: str  # CSS inlined, ready to send
    text: str


@dataclass(frozen=True)
class RenderedSms:
    body: str
    segments: SegmentCount
    warnings: list[str] = field(default_factory=list)


class _ListedLoader(FileSystemLoader):
    """A FileSystemLoader that knows the template files from one listing at start.

    Every render asks for locale variants that mostly do not exist; the environment caches
    the templates it found, but each miss would cost a file lookup per render (a system call
    that also hands the interpreter lock to the sending threads). Like ``auto_reload=False``,
    this means templates added under a running worker are seen after its restart.
    """

    def __init__(self, templates_dir: Path, *, inline_css: bool = False) -> None:
        super().__init__(templates_dir)
        self._names = frozenset(self.list_templates())
        self.inlined: dict[str, str] = {}  # email HTML sources with their CSS inlined
        if inline_css:
            self.inlined = self._inlined_sources(templates_dir)

    def _inlined_sources(self, templates_dir: Path) -> dict[str, str]:
        html = [n for n in self._names if n.startswith("email/") and n.endswith(".html.j2")]
        sources = {name: (templates_dir / name).read_text(encoding="utf-8") for name in html}
        css = stylesheet(sources)
        try:
            return {name: inline_source(source, css) for name, source in sources.items()}
        except NotInlinable as exc:
            log.warning("email CSS is inlined for each message: %s", exc)
            return {}

    def listed(self, template: str) -> bool:
        return template in self._names

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        if template not in self._names:
            raise TemplateNotFound(template)
        source, filename, uptodate = super().get_source(environment, template)
        return self.inlined.get(template, source), filename, uptodate


class MessageRenderer:
    """Renders templates from one directory; build it once per process (see ``renderer_for``).

    ``css_once=False`` inlines the CSS of each message as it is rendered, the slower way the
    inlined sources are checked against.
    """

    def __init__(
        self, templates_dir: Path, *, sms_segment_limit: int = 2, css_once: bool = True
    ) -> None:
        if not templates_dir.is_dir():
            raise ConfigError(f"templates directory {templates_dir} does not exist")
        self.templates_dir = templates_dir
        self.sms_segment_limit = sms_segment_limit
        loader = _ListedLoader(templates_dir, inline_css=css_once)
        self.env = _environment(loader)
        # The sources as written, whose HTML is inlined per message: when the stylesheet could
        # not be inlined ahead, and to check each template's first message against.
        self._as_written = _environment(_ListedLoader(templates_dir)) if loader.inlined else None
        self._inlined_ok: dict[tuple[str, str], bool] = {}
        self._inliner = css_inline.CSSInliner(keep_style_tags=False)
        self._chosen: dict[tuple[int, str, str, str], Template] = {}
        self._lines: dict[str, Template] = {}

    def render_email(self, template: str, context: Mapping[str, Any]) -> RenderedEmail:
        """Subject, inlined HTML and text of ``email/<template>`` in the context's locale.

        Raises jinja2 errors (UndefinedError, SecurityError, TemplateNotFound) unchanged: a
        template that cannot render must stop the send, not send something broken.
        TemplateTooLarge (a SecurityError) names the template that built too much.
        """
        locale = str(context["locale"])
        subject = self._render(f"email/{template}", "subject.j2", locale, context)
        html = self._html(f"email/{template}", locale, context)
        text = self._render(f"email/{template}", "txt.j2", locale, context)
        support = (context.get("shop") or {}).get("support_email")
        return RenderedEmail(
            subject=" ".join(subject.split()),  # a header: one line, however the file wraps
            html=strip_unsafe_links(html, mailto=[support] if support else []),
            text=text.strip() + "\n",
        )

    def _html(self, stem: str, locale: str, context: Mapping[str, Any]) -> str:
        """The HTML with its CSS inlined: rendered from the inlined sources once the first
        message of the template (in this locale) came out as inlining it would make it."""
        if self._as_written is None:
            return self._inliner.inline(self._render(stem, "html.j2", locale, context))
        ok = self._inlined_ok.get((stem, locale))
        if ok is False:
            written = self._render(stem, "html.j2", locale, context, self._as_written)
            return self._inliner.inline(written)
        # Written as the HTML serialiser writes them (every attribute in the inlined sources
        # is double-quoted), so the text is what inlining each message produced.
        once = (
            self._render(stem, "html.j2", locale, context)
            .replace("&#39;", "'")
            .replace("&#34;", "&quot;")
        )
        if ok is None:
            written = self._render(stem, "html.j2", locale, context, self._as_written)
            each = self._inliner.inline(written)
            ok = self._inlined_ok[(stem, locale)] = same_document(once, each)
            if not ok:
                log.warning("%s (%s): CSS inlined per message, a style spans files", stem, locale)
                return each
        return once

    def render_line(self, source: str, context: Mapping[str, Any], *, name: str) -> str:
        """``source``, a template given as text (an A/B variant's subject, called ``name`` in
        errors), rendered with ``context`` within the sandbox's limits, like a file. Compiled
        once per renderer: compiling took longer than rendering the whole email, and the
        campaigns hold a handful of such lines."""
        template = self._lines.get(source)
        if template is None:
            template = self._lines[source] = self.env.from_string(source)
        return render_bounded(template, context, name=name)

    def render_sms(
        self, template: str, context: Mapping[str, Any], *, marketing: bool
    ) -> RenderedSms:
        """The SMS body of ``sms/<template>``; marketing texts always end with the opt-out line.

        ``warnings`` says when the text is longer than the configured segment limit.
        """
        body = self._render(f"sms/{template}", "txt.j2", str(context["locale"]), context)
        body = re.sub(r"[ \t]+\n", "\n", body).strip()
        if marketing and "STOP" not in body:
            body = f"{body}\n{OPT_OUT_LINE}"
        segments = count_segments(body)
        warnings = []
        if segments.segments > self.sms_segment_limit:
            warnings.append(
                f"sms/{template}: {segments.segments} segments ({segments.encoding}, "
                f"{segments.units} units), over the limit of {self.sms_segment_limit}"
            )
        return RenderedSms(body=body, segments=segments, warnings=warnings)

    def render(
        self,
        channel: Literal["email", "sms"],
        template: str,
        context: Mapping[str, Any],
        *,
        marketing: bool,
    ) -> RenderedEmail | RenderedSms:
        if channel == "email":
            return self.render_email(template, context)
        return self.render_sms(template, context, marketing=marketing)

    def has_template(self, channel: Literal["email", "sms"], template: str) -> bool:
        """Whether the default (not localised) templates for ``template`` exist."""
        parts = ("subject.j2", "html.j2", "txt.j2") if channel == "email" else ("txt.j2",)
        return all((self.templates_dir / channel / f"{template}.{p}").is_file() for p in parts)

    def _render(
        self,
        stem: str,
        suffix: str,
        locale: str,
        context: Mapping[str, Any],
        env: Environment | None = None,
    ) -> str:
        return render_bounded(self._template(stem, suffix, locale, env or self.env), context)

    def _template(self, stem: str, suffix: str, locale: str, env: Environment) -> Template:
        # Templates are fixed for the renderer's life (see _ListedLoader), so is each choice.
        key = (id(env), stem, suffix, locale)
        chosen = self._chosen.get(key)
        if chosen is None:
            candidates = [f"{stem}.{variant}.{suffix}" for variant in _locale_variants(locale)]
            try:
                chosen = env.select_template([*candidates, f"{stem}.{suffix}"])
            except TemplateNotFound:
                raise ConfigError(
                    f"template {stem}.{suffix} not found in {self.templates_dir}"
                ) from None
            self._chosen[key] = chosen
        return chosen


class _ListedSandbox(BoundedSandbox):
    """The sandbox over a ``_ListedLoader``: choosing the first template that exists among a
    few (``{% include [a, b] %}``) passes over the names the listing lacks without loading
    them. The footer's include names ``_footer.<language>`` first, which mostly does not
    exist: each render loaded it, and the loader raised TemplateNotFound, which Jinja caught
    (about a tenth of a render, for each of the HTML and the text)."""

    def __init__(self, *, loader: _ListedLoader, **options: Any) -> None:
        super().__init__(loader=loader, **options)
        self._listed = loader

    def select_template(
        self,
        names: Iterable[str | Template],
        parent: str | None = None,
        globals: MutableMapping[str, Any] | None = None,
    ) -> Template:
        if not isinstance(names, Undefined):
            names = list(names)
            present = [
                name
                for name in names
                if not isinstance(name, str)
                or self._listed.listed(self.join_path(name, parent) if parent else name)
            ]
            # None listed: Jinja tries them all and raises its own error, naming each.
            names = present or names
        return super().select_template(names, parent, globals)


def _environment(loader: _ListedLoader) -> BoundedSandbox:
    env = _ListedSandbox(
        loader=loader,
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        # Templates do not change under a running worker; skipping the per-render stat of
        # every template file is a fifth of the render time.
        auto_reload=False,
    )
    env.filters.update(money=_money, localdate=_localdate, greeting=_greeting)
    env.bound_filters()
    return env


def render_message(
    renderer: MessageRenderer,
    channel: Literal["email", "sms"],
    template: str,
    context: Mapping[str, Any],
    *,
    marketing: bool,
) -> RenderedEmail | RenderedSms:
    """Render one message; what campaign validation calls with ``sample_context()``."""
    return renderer.render(channel, template, context, marketing=marketing)


def renderer_for(settings: Settings) -> MessageRenderer:
    """The renderer for the configured templates, built once per process."""
    return _cached_renderer(settings.templates_dir, settings.sms_segment_limit)


@lru_cache(maxsize=4)
def _cached_renderer(templates_dir: Path, sms_segment_limit: int) -> MessageRenderer:
    return MessageRenderer(templates_dir, sms_segment_limit=sms_segment_limit)


def _locale_variants(locale: str) -> list[str]:
    parsed = _parse_locale(locale)
    variants = []
    if parsed.territory:
        variants.append(f"{parsed.language}_{parsed.territory}")
    variants.append(parsed.language)
    return variants


@lru_cache(maxsize=256)
def _parse_locale(locale: str) -> Locale:
    try:
        return Locale.parse(locale.replace("-", "_"))
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en")


@pass_context
def _money(ctx: Context, amount: Decimal | int | str, currency: str | None = None) -> str:
    """``{{ order.total | money(order.currency) }}``: Decimal formatted for the customer's
    locale; without a currency, in the shop's (``{{ reward.value | money }}``)."""
    code = currency or ctx["shop"]["currency"]
    if type(amount) in (Decimal, int, str):  # each is its str exactly, as a Decimal
        return _formatted_money(str(amount), code, ctx["locale"])
    return str(format_currency(Decimal(amount), code, locale=_parse_locale(ctx["locale"])))


@lru_cache(maxsize=4096)
def _formatted_money(amount: str, currency: str, locale: str) -> str:
    # Prices repeat from message to message, and Babel took about 10 us to format one (an
    # email renders in about 150).
    return str(format_currency(Decimal(amount), currency, locale=_parse_locale(locale)))


@pass_context
def _localdate(ctx: Context, value: datetime | None, style: str = "date") -> str:
    """A UTC time shown in the customer's zone: ``style`` is ``date`` or ``datetime``."""
    if value is None:
        return ""
    local = value.astimezone(ZoneInfo(ctx["time_zone"]))
    locale = _parse_locale(ctx["locale"])
    if style == "datetime":
        return str(format_datetime(local, "medium", tzinfo=local.tzinfo, locale=locale))
    return str(format_date(local.date(), "long", locale=locale))


@pass_context
def _greeting(ctx: Context, first_name: str | None) -> str:
    """A greeting with the first name, or a neutral one in the customer's language without it."""
    named, neutral = _GREETINGS.get(_parse_locale(ctx["locale"]).language, _GREETINGS["en"])
    name = (first_name or "").strip()
    return named.format(name=name) if name else neutral
