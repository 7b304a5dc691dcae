"""A plugin's data files: its indicators (CSV), data forms (JSON) and regimes (TOML), read and checked
by the core (docs/plugin_data.md).

    plugins/<name>/data/indicators.csv      the official 7 columns of QĐ 05/2023 + local codes
    plugins/<name>/data/forms/*.json        one form a file (docs/forms.md, docs/form.schema.json)
    plugins/<name>/data/regimes/*.toml      one regime a file, keys named for Decree 09 Art. 7

The seam is a helper the plugin's hooks call — ``plugin_data(NAME, __file__)`` — not a folder the
core goes looking for: every contribution still arrives through the hook that carries it
(``register_regimes``, ``startup``), so a plugin switched off or failed contributes nothing, a
file's mistake is recorded against its plugin exactly as a bad Python spec is, and the plugin can
join data with its settings (a unit code from ``[plugins.<name>]``). The plugin declares (the files);
the core reads, checks and writes them — the same checks a screen's input gets
(``parse_table`` / ``apply_plan``, ``check_definition``, ``regimes.clean``).

Each loader checks every file before anything is used and reports every mistake at once, each with
its file and its place (a CSV line and column, a JSON path ``rows[3].formula``, a TOML key
``deadline_rules[1].rule``), in Vietnamese and English (``PluginDataError``). A plugin whose files
hold a mistake gets nothing written: no indicator, no form, no regime.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from core.catalogue import indicators as catalogue
from core.errors import BaocaoError
from core.models import UNIT_KINDS
from core.regimes import form_schema
from core.regimes.regimes import RECEIVING_RULES, RegimeSpec, clean, spec_problems

INDICATORS_FILE = "indicators.csv"
FORMS_DIR = "forms"
REGIMES_DIR = "regimes"


@dataclass(frozen=True)
class DataProblem:
    """One mistake in one file: ``where`` a JSON path or TOML key, or ``line`` and ``column`` of a CSV."""

    file: str  # relative to the plugin's package: data/forms/KTXH-01.json
    where: str
    key: str
    params: tuple = ()
    line: int | None = None

    def place(self, lang: str) -> str:
        from core.i18n import core_catalog

        if self.line is not None:
            return core_catalog().gettext(lang, "plugin_data.place.csv", line=self.line, column=self.where)
        return self.where

    def message(self, lang: str = "vi") -> str:
        text = form_schema.Problem(self.where, self.key, self.params).message(lang)
        return f"{self.file}: {self.place(lang)}: {text}"


class PluginDataError(BaocaoError):
    """A plugin's data files hold mistakes; ``problems`` lists every one."""

    key = "plugin_data.error"

    def __init__(self, plugin: str, problems: list[DataProblem]):
        super().__init__(plugin=plugin, count=len(problems))
        self.plugin = plugin
        self.problems = problems

    def message(self, lang: str = "vi") -> str:
        lines = [super().message(lang)] + [f"- {p.message(lang)}" for p in self.problems]
        return "\n".join(lines)

    def __str__(self) -> str:
        # The plugins page shows the first line: the count and the first mistake, in both languages.
        first = self.problems[0] if self.problems else None
        head = " / ".join(f"{BaocaoError.message(self, lang)} {first.message(lang) if first else ''}".strip()
                          for lang in ("vi", "en"))
        return "\n".join([head] + [f"- {p.message('vi')} / {p.message('en')}" for p in self.problems[1:]])


# -- regimes: TOML key → RegimeSpec field -----------------------------------------------------------
# Top-level keys are the components of Decree 09 Art. 7 as ``core.regimes.regimes.COMPONENTS`` names
# them (name, content, units, receiving_unit, sending_methods, deadline_rules, frequency, cutoff_rule,
# outline, data_forms, guidance) plus the regime's code, type, issuer, drafting unit, legal basis and
# data form. A new RegimeSpec field is one line here and one in docs/plugin_data.md.

STRING, STRINGS, DATE, TABLE, TABLES = "string", "strings", "date", "table", "tables"  # TOML types
TOP_KEYS = {
    "code": ("code", STRING), "type": ("regime_type", STRING), "name": ("name", STRING),
    "content": ("content", STRING), "content_type": ("content_type", STRING),
    "sending_methods": ("sending_methods", STRINGS), "frequency": ("frequency", STRING),
    "cutoff_rule": ("cutoff_rule", STRING), "outline": ("outline", STRING), "data_forms": ("data_forms", STRING),
    "guidance": ("guidance", STRING), "form": ("form", STRING),
    "units": (None, TABLE), "receiving_unit": (None, TABLE), "issuing_unit": (None, TABLE),
    "preparing_unit": (None, TABLE), "legal": (None, TABLE), "deadline_rules": ("deadline_rules", TABLES),
}
TABLE_KEYS = {
    "units": {"kinds": ("reporting_kinds", STRINGS), "group": ("reporting_group", STRING),
              "codes": ("reporting_codes", STRINGS)},
    "receiving_unit": {"rule": ("receiving_rule", STRING), "kind": ("receiving_unit_kind", STRING),
                       "code": ("receiving_unit_code", STRING), "group": ("receiving_group", STRING)},
    "issuing_unit": {"kind": ("issuing_unit_kind", STRING), "code": ("issuing_unit_code", STRING)},
    "preparing_unit": {"code": ("preparing_unit_code", STRING)},
    "legal": {"number": ("legal_number", STRING), "date": ("legal_date", DATE), "issuer": ("legal_issuer", STRING)},
}
DEADLINE_KEYS = {"level": STRING, "from_kind": STRING, "rule": STRING}
REQUIRED_KEYS = ("code", "name")
UNIT_KIND_KEYS = {"reporting_kinds": "units.kinds", "receiving_unit_kind": "receiving_unit.kind",
                  "issuing_unit_kind": "issuing_unit.kind"}
# ``regimes.clean``'s error fields → the TOML key they come from.
CLEAN_FIELDS = {"regime_type": "type", "units": "units.kinds", "legal_date": "legal.date",
                "receiving_rule": "receiving_unit.rule", "receiving_group": "receiving_unit.group"}
# Which [receiving_unit] keys go with which rule (absent rule: "unit").
RULE_KEYS = {"unit": ("kind", "code"), "parent": (), "group_owner": ("group",)}
# RegimeSpec fields naming units or groups by code → their TOML key (checked against the database).
CODE_KEYS = {"issuing_unit_code": "issuing_unit.code", "receiving_unit_code": "receiving_unit.code",
             "receiving_group": "receiving_unit.group", "reporting_group": "units.group",
             "reporting_codes": "units.codes"}

_TOML_TYPES = {
    STRING: lambda v: isinstance(v, str),
    STRINGS: lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    DATE: lambda v: isinstance(v, dt.date) and not isinstance(v, dt.datetime),
    TABLE: lambda v: isinstance(v, dict),
    TABLES: lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
}


@functools.lru_cache(maxsize=256)
def _form_file_problems(text: str) -> tuple:
    """``form_schema.check_form_file`` of a form file's text, once per process: the same files are
    checked at every start (each web worker's, each command's, the test suite's ~3,000), and the
    check (the schema, then compiling every formula) costs most of loading a plugin's regimes."""
    return tuple(form_schema.check_form_file(json.loads(text)))


class PluginData:
    """The data files of one plugin package (``plugin_data(NAME, __file__)``)."""

    def __init__(self, name: str, folder: Path):
        self.name = name
        self.folder = folder  # the package's data/ folder

    def _rel(self, path: Path) -> str:
        return f"data/{path.relative_to(self.folder).as_posix()}"

    def _fail(self, problems: list[DataProblem]) -> None:
        if problems:
            raise PluginDataError(self.name, problems)

    # -- indicators -------------------------------------------------------------------------------

    def indicators_plan(self, *, compare: bool = True) -> catalogue.ImportPlan:
        """The indicators file read as the catalogue importer reads an official table (its 7 columns,
        the optional catalogue columns and the plugin's own codes); writes nothing. ``compare``:
        against the catalogue (what is new), else the file alone, with no database."""
        path = self.folder / INDICATORS_FILE
        name = self._rel(path)
        if not path.is_file():
            self._fail([DataProblem(name, "$", "plugin_data.file_missing")])
        try:
            plan = catalogue.parse_table(path, path.name, source_act=f"Plugin {self.name}", valid_from=None,
                                         local_codes=True, compare=compare)
        except (UnicodeDecodeError, BaocaoError):
            self._fail([DataProblem(name, "$", "plugin_data.csv_unreadable")])
        self._fail([DataProblem(name, catalogue.FIELD_LABELS.get(field, field), key, tuple(params.items()),
                                line=line) for line, field, key, params in plan.errors])
        return plan

    def indicator_rows(self) -> list[dict]:
        """The file's groups and indicators as the catalogue would take them, in file order."""
        return [{"kind": row.kind, **row.data} for row in self.indicators_plan(compare=False).rows]

    def load_indicators(self, *, actor=None) -> int:
        """Create the groups and indicators the catalogue lacks, in one transaction; returns how many
        indicators were created. What exists is never touched: an indicator an administrator edited
        since stays as edited (re-saving it would silently make a new version)."""
        plan = self.indicators_plan()
        missing = [(row, change) for row, (_, change) in zip(plan.rows, plan.changes) if change == "new"]
        if not missing:
            return 0
        plan.rows, plan.changes = [row for row, _ in missing], [(row.code, change) for row, change in missing]
        catalogue.apply_plan(plan, actor=actor)
        return sum(1 for row, _ in missing if row.kind == "indicator")

    # -- forms ------------------------------------------------------------------------------------

    def _form_files(self) -> tuple[dict[str, dict], list[DataProblem]]:
        forms: dict[str, dict] = {}
        problems: list[DataProblem] = []
        for path in sorted((self.folder / FORMS_DIR).glob("*.json")):
            name = self._rel(path)
            try:
                text = path.read_text(encoding="utf-8")
                document = json.loads(text)
            except UnicodeDecodeError:
                problems.append(DataProblem(name, "$", "plugin_data.not_utf8"))
                continue
            except json.JSONDecodeError as exc:
                problems.append(DataProblem(name, "$", "plugin_data.json_syntax",
                                            (("line", exc.lineno), ("column", exc.colno), ("error", exc.msg))))
                continue
            found = _form_file_problems(text)
            problems += [DataProblem(name, p.where, p.key, p.params) for p in found]
            if found:
                continue
            if document["code"] in forms:
                problems.append(DataProblem(name, "code", "plugin_data.code_twice",
                                            (("code", document["code"]), ("other", forms[document["code"]]["file"]))))
                continue
            forms[document["code"]] = {"file": name, "code": document["code"], "name": document["name"],
                                       "frequency": document.get("frequency") or "",
                                       "definition": form_schema.definition_of(document)}
        return forms, problems

    def forms(self) -> dict[str, dict]:
        """code → ``{"code", "name", "frequency", "definition"}`` of every form file, all checked."""
        forms, problems = self._form_files()
        self._fail(problems)
        return {code: {k: v for k, v in form.items() if k != "file"} for code, form in forms.items()}

    # -- regimes ----------------------------------------------------------------------------------

    def regimes(self, **overrides) -> list:
        """The ``RegimeSpec`` of every regime file, in file-name order, each with its data form;
        ``overrides`` (RegimeSpec fields, e.g. ``preparing_unit_code`` from the plugin's settings)
        apply to all. Every form and regime file is checked first; one mistake anywhere loads none."""
        unknown = set(overrides) - {f.name for f in dataclasses.fields(RegimeSpec)}
        if unknown:
            raise TypeError(f"not RegimeSpec fields: {sorted(unknown)}")
        forms, problems = self._form_files()
        specs, seen = [], {}
        for path in sorted((self.folder / REGIMES_DIR).glob("*.toml")):
            name = self._rel(path)
            fields, found = self._regime_fields(path, name, forms)
            problems += found
            if found:
                continue
            if fields["code"] in seen:
                problems.append(DataProblem(name, "code", "plugin_data.code_twice",
                                            (("code", fields["code"]), ("other", seen[fields["code"]]))))
                continue
            seen[fields["code"]] = name
            specs.append(dataclasses.replace(RegimeSpec(**fields), **overrides))
        self._fail(problems)
        return specs

    def _regime_fields(self, path: Path, name: str, forms: dict) -> tuple[dict, list[DataProblem]]:
        """The RegimeSpec fields of one regime file, or its mistakes."""
        problems: list[DataProblem] = []

        def problem(where: str, key: str, **params) -> None:
            problems.append(DataProblem(name, where, key, tuple(params.items())))

        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            problem("$", "plugin_data.not_utf8")
            return {}, problems
        except tomllib.TOMLDecodeError as exc:
            problem("$", "plugin_data.toml_syntax", error=str(exc))
            return {}, problems
        fields: dict = {}

        def take(value, kind: str, where: str, field: str | None) -> bool:
            if not _TOML_TYPES[kind](value):
                problem(where, f"plugin_data.toml_type.{kind}")
                return False
            if field:
                fields[field] = tuple(value) if kind == STRINGS else value
            return True

        for key, value in document.items():
            if key not in TOP_KEYS:
                problem(key, "plugin_data.schema.unknown", name=key)
                continue
            field, kind = TOP_KEYS[key]
            if not take(value, kind, key, field if kind != TABLES else None):
                continue
            if key in TABLE_KEYS:
                for sub, sub_value in value.items():
                    if sub not in TABLE_KEYS[key]:
                        problem(f"{key}.{sub}", "plugin_data.schema.unknown", name=sub)
                        continue
                    take(sub_value, TABLE_KEYS[key][sub][1], f"{key}.{sub}", TABLE_KEYS[key][sub][0])
            elif key == "deadline_rules":
                rules = []
                for index, rule in enumerate(value):
                    for sub, sub_value in rule.items():
                        where = f"deadline_rules[{index}].{sub}"
                        if sub not in DEADLINE_KEYS:
                            problem(where, "plugin_data.schema.unknown", name=sub)
                        else:
                            take(sub_value, DEADLINE_KEYS[sub], where, None)
                    if "rule" not in rule:
                        problem(f"deadline_rules[{index}]", "plugin_data.schema.required", name="rule")
                    rules.append((rule.get("level", ""), rule.get("from_kind", ""), rule.get("rule", "")))
                fields["deadline_rules"] = tuple(rules)
        for key in REQUIRED_KEYS:
            if key not in document:
                problem("$", "plugin_data.schema.required", name=key)
        if problems:
            return {}, problems
        # The values: what the core checks on a regime typed on its screen (regimes.clean), then
        # what only a file can get wrong (the code's owner, unit kinds, the form it names).
        if not fields["code"].startswith(self.name + "."):
            problem("code", "plugin_data.regime_code", code=fields["code"], prefix=self.name + ".")
        for field, where in UNIT_KIND_KEYS.items():
            values = fields.get(field)
            for value in (values if isinstance(values, tuple) else (values,) if values else ()):
                if value not in UNIT_KINDS:
                    problem(where, "plugin_data.schema.enum", value=json.dumps(value, ensure_ascii=False),
                            choices=", ".join(UNIT_KINDS))
        for table, keys in (("issuing_unit", ("kind", "code")), ("receiving_unit", ("kind", "code"))):
            given = [k for k in keys if k in document.get(table, {})]
            if len(given) > 1:
                problem(f"{table}.{given[1]}", "plugin_data.one_of", keys=" / ".join(f"{table}.{k}" for k in keys))
        rule = fields.get("receiving_rule") or "unit"
        if rule in RECEIVING_RULES:
            for sub in document.get("receiving_unit", {}):
                if sub != "rule" and sub not in RULE_KEYS[rule]:
                    problem(f"receiving_unit.{sub}", "plugin_data.rule_key", rule=rule)
            if rule == "group_owner" and "receiving_group" not in fields:
                problem("receiving_unit", "plugin_data.schema.required", name="group")
        _, errors = clean({"code": fields["code"], "name": fields["name"],
                           "regime_type": fields.get("regime_type"), "content": fields.get("content"),
                           "content_type": fields.get("content_type"), "kinds": list(fields.get("reporting_kinds", ())),
                           "sending_methods": list(fields.get("sending_methods", ())),
                           "deadline_rules": [{"level": lv, "from_kind": fk, "rule": r}
                                              for lv, fk, r in fields.get("deadline_rules", ())],
                           "frequency": fields.get("frequency"), "cutoff_rule": fields.get("cutoff_rule"),
                           "legal_date": fields.get("legal_date"),
                           "receiving_rule": fields.get("receiving_rule"), "receiving_group_id": None})
        errors.pop("issuing_unit", None)  # chosen from issuing_unit.kind when the regime is loaded
        errors.pop("receiving_group", None)  # a group's code, checked below against the database
        for field, key in errors.items():
            if field.startswith("deadline_rules."):
                where = f"deadline_rules[{field.split('.', 1)[1]}]"
            else:
                where = CLEAN_FIELDS.get(field, field)
            if where == "units.kinds" and any(p.where == where for p in problems):
                continue  # said once, with the kinds to choose from
            problem(where, key)
        if "form" in fields:
            form = forms.get(fields["form"])
            if form is None:
                problem("form", "plugin_data.form_unknown", code=fields["form"])
            else:
                if form["frequency"] and fields.get("frequency") and form["frequency"] != fields["frequency"] \
                        and "frequency" not in errors:
                    problem("form", "plugin_data.form_frequency", code=form["code"], frequency=form["frequency"])
                fields["form"] = {"code": form["code"], "name": form["name"], "definition": form["definition"]}
        if not problems:
            # Units and groups named by code must exist (the database is read only when a file names some).
            for field, key, code in spec_problems(RegimeSpec(**fields)):
                problem(CODE_KEYS[field], "plugin_data.group_unknown" if field.endswith("group")
                        else "plugin_data.unit_unknown", code=code)
        return fields, problems


def plugin_data(name: str, package_file: str | Path) -> PluginData:
    """The data files of the plugin ``name`` whose package holds ``package_file`` (its ``__file__``):
    ``<package>/data/``."""
    return PluginData(name, Path(package_file).resolve().parent / "data")
