"""Check cardhub's canonical WSDLs, their schemas and every SOAP sample.

Run it through `scripts/check-wsdl` (any cwd; it prepares .venv first).

What is checked, one output line per file:

1. `wsdl/account-system.xsd` and `wsdl/hub.xsd` load with xmlschema as valid
   XSD 1.0, and every element, attribute, group, named type and enumeration
   value in them carries a non-empty xs:annotation/xs:documentation.
2. `wsdl/account-system.wsdl` and `wsdl/hub.wsdl` load with zeep
   (`zeep.wsdl.Document`, `Settings(strict=True, forbid_external=True,
   forbid_dtd=True, forbid_entities=True)`): each has exactly one SOAP 1.1 and
   one SOAP 1.2 binding, each binding has exactly the expected operations,
   document style, a soapAction, the expected input / output / fault
   elements, and the service has one port per binding.
3. Every `fixtures/soap/canonical/*.xml` sample: a SOAP Envelope whose
   version matches its name (`*.soap11.xml` / `*.soap12.xml`), one Body with
   one child. That child must be the element its name says
   (`authorize-request` -> as:Authorize, `authorize-response` /
   `-declined` / `-rejected` -> as:AuthorizeResponse, `-fault` -> a SOAP
   Fault); it is validated against the XSD with xmlschema and parsed by zeep.
   A Fault must be well-formed for its SOAP version and carry exactly one
   detail element, the fault element the WSDL declares (AccountSystemFault
   or HubFault), which is validated the same way. The set of required
   samples is checked too.
4. Every `*.xml` file under `target/rendered-requests/` (recursively), if
   that folder exists: the adapter engine renders the canonical requests
   there, and the tests of `src/api/hub_soap` every answer and fault cardhub
   serves (in `hub/`), so that they can be checked against the WSDLs. Such a
   file may be a SOAP 1.1 / 1.2 Envelope or a bare message element (e.g.
   as:Authorize); its body element (or Fault detail) must be one the WSDLs
   declare and is validated against that WSDL's XSD as above; a file named
   like a sample is held to its name. When `hub/` exists it must hold, valid,
   every hub.wsdl output and fault element in both SOAP versions; when
   `refsys/` exists (the reference account system's answers, written by
   `cargo test --test refsys`), every account-system.wsdl output and fault
   element in both SOAP versions.

Extra arguments (files or folders) replace steps 3 and 4: only those files
are checked (as in step 4), after the WSDLs and schemas.

XML parsing is safe for untrusted input: files are parsed with lxml with
entity resolution, DTD loading and network access turned OFF, and a DOCTYPE
is refused outright; xmlschema validates the already-parsed tree (allow='none',
defuse='always') and loads the schemas only from the wsdl/ folder
(allow='sandbox').

Exit status: 0 when everything passed, 1 when a check failed (each failure is
printed as `FAIL <file>: <XPath>: <reason>`), 2 on a usage error.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import xmlschema
    import zeep
    from lxml import etree
    from zeep.transports import Transport
    from zeep.wsdl import Document
    from zeep.wsdl.bindings.soap import Soap11Binding, Soap12Binding
except ImportError as e:  # pragma: no cover - environment problem
    print(f"check-wsdl: {e}; run scripts/python-env", file=sys.stderr)
    sys.exit(2)

REPO = Path(__file__).resolve().parent.parent
WSDL_DIR = REPO / "wsdl"
CANONICAL = REPO / "fixtures" / "soap" / "canonical"
RENDERED = REPO / "target" / "rendered-requests"
HUB_RENDERED = RENDERED / "hub"
REFSYS_RENDERED = RENDERED / "refsys"

XS = "http://www.w3.org/2001/XMLSchema"
SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12_ENV = "http://www.w3.org/2003/05/soap-envelope"
XML_NS = "http://www.w3.org/XML/1998/namespace"
SOAP_VERSION = {SOAP11_ENV: "1.1", SOAP12_ENV: "1.2"}
FAULT_CODES = {
    SOAP11_ENV: {"VersionMismatch", "MustUnderstand", "Client", "Server"},
    SOAP12_ENV: {"VersionMismatch", "MustUnderstand", "DataEncodingUnknown", "Sender", "Receiver"},
}

AS_NS = "urn:cardhub:account-system:v1"
HUB_NS = "urn:cardhub:hub:v1"


@dataclass
class Interface:
    """What one WSDL must declare."""

    wsdl: str
    xsd: str
    namespace: str
    operations: tuple[str, ...]
    fault: str
    bindings: dict[str, type]  # binding local name -> zeep binding class
    service: str
    # Filled in by load_interface:
    schema: "xmlschema.XMLSchema10 | None" = None
    document: "Document | None" = None
    # element QName -> (operation, role) with role in input/output/fault
    elements: dict[str, tuple[str, str]] = field(default_factory=dict)


INTERFACES = [
    Interface(
        wsdl="account-system.wsdl",
        xsd="account-system.xsd",
        namespace=AS_NS,
        operations=("Authorize", "Load", "Reverse", "Advice", "BalanceInquiry"),
        fault="AccountSystemFault",
        bindings={"AccountSystemSoap11": Soap11Binding, "AccountSystemSoap12": Soap12Binding},
        service="AccountSystemService",
    ),
    Interface(
        wsdl="hub.wsdl",
        xsd="hub.xsd",
        namespace=HUB_NS,
        operations=("StatusNotify", "SubmitBalances"),
        fault="HubFault",
        bindings={"HubSoap11": Soap11Binding, "HubSoap12": Soap12Binding},
        service="HubService",
    ),
]

# Samples that must exist in fixtures/soap/canonical.
REQUIRED_SAMPLES = [
    f"{op}-{role}.soap11.xml"
    for op in ("authorize", "load", "reverse", "advice", "balance-inquiry")
    for role in ("request", "response")
] + [
    "authorize-request.soap12.xml",
    "authorize-response.soap12.xml",
    "authorize-declined.soap11.xml",
    "authorize-fault.soap11.xml",
    "status-notify-request.soap11.xml",
    "status-notify-request.soap12.xml",
    "status-notify-fault.soap11.xml",
    "status-notify-fault.soap12.xml",
    "submit-balances-request.soap11.xml",
]

SAMPLE_NAME = re.compile(r"^(?P<op>[a-z]+(?:-[a-z]+)*)-(?P<role>request|response|declined|rejected|fault)\.soap(?P<ver>11|12)\.xml$")


class Failure(Exception):
    """A check failed: where (XPath or element) and why."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class Checker:
    def __init__(self) -> None:
        self.failures = 0
        self.checked = 0

    def rel(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(REPO))
        except ValueError:
            return str(path)

    def ok(self, path: Path | str, what: str) -> None:
        self.checked += 1
        name = self.rel(path) if isinstance(path, Path) else path
        print(f"ok    {name}  {what}")

    def fail(self, path: Path | str, where: str, reason: str) -> None:
        self.checked += 1
        self.failures += 1
        name = self.rel(path) if isinstance(path, Path) else path
        print(f"FAIL  {name}: {where}: {reason}")


# ---------------------------------------------------------------- parsing


def safe_parser() -> etree.XMLParser:
    # Entity resolution OFF, no DTD loading, no network: untrusted input.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )


def parse(path: Path) -> etree._ElementTree:
    try:
        tree = etree.parse(str(path), safe_parser())
    except etree.XMLSyntaxError as e:
        raise Failure(f"line {e.lineno}", f"not well-formed XML: {e.msg}") from None
    except OSError as e:
        raise Failure("/", f"cannot read: {e}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise Failure("/", "a DOCTYPE is not allowed")
    return tree


def xpath(elem: etree._Element) -> str:
    return elem.getroottree().getpath(elem)


# ---------------------------------------------------------------- schemas


def check_documented(checker: Checker, path: Path) -> None:
    """Every declaration in an XSD carries non-empty documentation."""
    tree = parse(path)
    kinds = ("element", "attribute", "group", "complexType", "simpleType", "enumeration")
    missing = []
    for elem in tree.getroot().iter(*(f"{{{XS}}}{k}" for k in kinds)):
        local = etree.QName(elem).localname
        # Anonymous types document themselves through their element.
        if local in ("complexType", "simpleType") and elem.get("name") is None:
            continue
        # References (<xs:group ref=...>, <xs:element ref=...>) are documented where declared.
        if elem.get("ref") is not None:
            continue
        docs = elem.findall(f"{{{XS}}}annotation/{{{XS}}}documentation")
        if not any("".join(d.itertext()).strip() for d in docs):
            name = elem.get("name") or elem.get("value") or ""
            missing.append(f"{xpath(elem)} ({local} {name})")
    if missing:
        raise Failure(missing[0], f"no xs:annotation/xs:documentation ({len(missing)} declaration(s) in all)")


def load_schema(checker: Checker, iface: Interface) -> bool:
    path = WSDL_DIR / iface.xsd
    try:
        schema = xmlschema.XMLSchema10(str(path), allow="sandbox", defuse="always")
    except (xmlschema.XMLSchemaException, etree.XMLSyntaxError, OSError) as e:
        checker.fail(path, "/xs:schema", f"not a valid XSD: {e}")
        return False
    if schema.target_namespace != iface.namespace:
        checker.fail(path, "/xs:schema/@targetNamespace", f"is {schema.target_namespace!r}, expected {iface.namespace!r}")
        return False
    try:
        check_documented(checker, path)
    except Failure as f:
        checker.fail(path, f.where, f.reason)
        return False
    iface.schema = schema
    checker.ok(path, f"valid XSD 1.0, {len(schema.elements)} global elements, every declaration documented")
    return True


# ------------------------------------------------------------------ WSDLs


def load_wsdl(checker: Checker, iface: Interface) -> bool:
    path = WSDL_DIR / iface.wsdl
    settings = zeep.Settings(strict=True, forbid_external=True, forbid_dtd=True, forbid_entities=True)
    try:
        doc = Document(str(path), Transport(), settings=settings)
    except Exception as e:  # zeep raises many kinds
        checker.fail(path, "/wsdl:definitions", f"zeep cannot load it: {type(e).__name__}: {e}")
        return False

    ns = iface.namespace
    expected_ops = set(iface.operations)
    problems: list[tuple[str, str]] = []
    found_bindings = {etree.QName(q).localname: b for q, b in doc.bindings.items()}
    if set(found_bindings) != set(iface.bindings):
        problems.append(("/wsdl:definitions/wsdl:binding", f"bindings are {sorted(found_bindings)}, expected {sorted(iface.bindings)}"))
    for bname, cls in iface.bindings.items():
        binding = found_bindings.get(bname)
        if binding is None:
            continue
        where = f"/wsdl:definitions/wsdl:binding[@name='{bname}']"
        if type(binding) is not cls:
            problems.append((where, f"is a {type(binding).__name__}, expected a {cls.__name__}"))
        ops = binding._operations
        if set(ops) != expected_ops:
            problems.append((where, f"operations are {sorted(ops)}, expected {sorted(expected_ops)}"))
        for name in iface.operations:
            op = ops.get(name)
            if op is None:
                continue
            owhere = f"{where}/wsdl:operation[@name='{name}']"
            if op.style != "document":
                problems.append((owhere, f"style is {op.style!r}, expected 'document'"))
            if not op.soapaction:
                problems.append((owhere, "no soapAction"))
            want_in, want_out = f"{{{ns}}}{name}", f"{{{ns}}}{name}Response"
            got_in = op.input.body.qname.text if op.input is not None and op.input.body is not None else None
            got_out = op.output.body.qname.text if op.output is not None and op.output.body is not None else None
            if got_in != want_in:
                problems.append((f"{owhere}/wsdl:input", f"body element is {got_in}, expected {want_in}"))
            if got_out != want_out:
                problems.append((f"{owhere}/wsdl:output", f"body element is {got_out}, expected {want_out}"))
            fault = op.faults.get(iface.fault)
            fault_el = None
            if fault is not None:
                parts = list(fault.abstract.parts.values())
                if len(parts) == 1 and parts[0].element is not None:
                    fault_el = parts[0].element.qname.text
            want_fault = f"{{{ns}}}{iface.fault}"
            if fault_el != want_fault:
                problems.append((f"{owhere}/wsdl:fault", f"fault {iface.fault!r} element is {fault_el}, expected {want_fault}"))
            iface.elements[want_in] = (name, "input")
            iface.elements[want_out] = (name, "output")
            iface.elements[want_fault] = ("every operation", "fault")

    services = {etree.QName(q).localname if q.startswith("{") else q: s for q, s in doc.services.items()}
    svc = services.get(iface.service)
    if svc is None:
        problems.append(("/wsdl:definitions/wsdl:service", f"no service {iface.service!r} (found {sorted(services)})"))
    else:
        bound = sorted(etree.QName(p.binding.name).localname for p in svc.ports.values())
        if bound != sorted(iface.bindings):
            problems.append((f"/wsdl:definitions/wsdl:service[@name='{iface.service}']", f"ports bind {bound}, expected one port per binding {sorted(iface.bindings)}"))
        for pname, port in svc.ports.items():
            if not port.binding_options.get("address"):
                problems.append((f"/wsdl:definitions/wsdl:service/wsdl:port[@name='{pname}']", "no address location"))

    if problems:
        for where, reason in problems:
            checker.fail(path, where, reason)
        return False
    iface.document = doc
    summary = ", ".join(
        f"{b} ({'SOAP 1.1' if c is Soap11Binding else 'SOAP 1.2'}): {' '.join(iface.operations)}"
        for b, c in iface.bindings.items()
    )
    checker.ok(path, f"zeep: {summary}")
    return True


# -------------------------------------------------------------- envelopes


def element_interface(qname: str) -> Interface | None:
    for iface in INTERFACES:
        if qname in iface.elements:
            return iface
    return None


def validate_message(elem: etree._Element) -> str:
    """Validates a message element (request, response or fault detail).
    Returns its description; raises Failure."""
    qname = elem.tag
    iface = element_interface(qname)
    if iface is None:
        known = sorted(q for i in INTERFACES for q in i.elements)
        raise Failure(xpath(elem), f"element {qname} is not a message of the WSDLs (known: {', '.join(known)})")
    resource = xmlschema.XMLResource(elem, allow="none", defuse="always")
    errors = list(iface.schema.iter_errors(resource))
    if errors:
        e = errors[0]
        where = xpath(e.elem) if isinstance(e.elem, etree._Element) else (e.path or xpath(elem))
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise Failure(where, f"invalid against {iface.xsd}: {e.reason or e.message}{more}")
    # The same element as zeep (a vendor's or test peer's SOAP stack) reads it.
    try:
        iface.document.types.get_element(qname).parse(elem, iface.document.types)
    except Exception as e:
        raise Failure(xpath(elem), f"zeep cannot read it: {type(e).__name__}: {e}")
    op, role = iface.elements[qname]
    local = etree.QName(qname).localname
    if role == "fault":
        return f"{local} ({iface.wsdl} fault detail)"
    return f"{local} ({iface.wsdl} {op} {role})"


def only_child_elements(parent: etree._Element) -> list[etree._Element]:
    """Element children; raises Failure on stray text."""
    children = []
    if parent.text and parent.text.strip():
        raise Failure(xpath(parent), f"unexpected text {parent.text.strip()[:40]!r}")
    for child in parent:
        if child.tail and child.tail.strip():
            raise Failure(xpath(parent), f"unexpected text {child.tail.strip()[:40]!r}")
        if isinstance(child.tag, str):
            children.append(child)
    return children


def check_fault(fault: etree._Element, env_ns: str) -> tuple[str, str]:
    """SOAP 1.1 / 1.2 Fault structure; validates the one detail element.
    Returns a summary and the detail element's QName."""
    children = only_child_elements(fault)
    if env_ns == SOAP11_ENV:
        names = [c.tag for c in children]
        expected_prefix = ["faultcode", "faultstring"]
        if names[:2] != expected_prefix or any(n not in ("faultactor", "detail") for n in names[2:]):
            raise Failure(xpath(fault), f"SOAP 1.1 Fault children are {names}, expected faultcode, faultstring[, faultactor][, detail] (unqualified)")
        code = children[0]
        value = (code.text or "").strip()
        detail = next((c for c in children if c.tag == "detail"), None)
    else:
        names = [etree.QName(c).localname if etree.QName(c).namespace == SOAP12_ENV else c.tag for c in children]
        if names[:2] != ["Code", "Reason"] or any(n not in ("Node", "Role", "Detail") for n in names[2:]):
            raise Failure(xpath(fault), f"SOAP 1.2 Fault children are {names}, expected Code, Reason[, Node][, Role][, Detail]")
        code = children[0].find(f"{{{SOAP12_ENV}}}Value")
        if code is None:
            raise Failure(xpath(children[0]), "no env:Value")
        value = (code.text or "").strip()
        texts = children[1].findall(f"{{{SOAP12_ENV}}}Text")
        if not texts or any(t.get(f"{{{XML_NS}}}lang") is None for t in texts):
            raise Failure(xpath(children[1]), "needs env:Text elements with xml:lang")
        detail = next((c for c in children if c.tag == f"{{{SOAP12_ENV}}}Detail"), None)
    prefix, _, local = value.rpartition(":")
    if env_ns == SOAP11_ENV:
        local = local.split(".")[0]  # SOAP 1.1 dotted subcodes: Server.Timeout
    if code.nsmap.get(prefix or None) != env_ns or local not in FAULT_CODES[env_ns]:
        raise Failure(xpath(code), f"fault code {value!r} is not one of SOAP {SOAP_VERSION[env_ns]}'s {sorted(FAULT_CODES[env_ns])} in the envelope namespace")
    if detail is None:
        raise Failure(xpath(fault), "no detail: a canonical fault carries its fault element (AccountSystemFault / HubFault)")
    items = only_child_elements(detail)
    if len(items) != 1:
        raise Failure(xpath(detail), f"expected exactly one detail element, found {len(items)}")
    item = items[0]
    iface = element_interface(item.tag)
    if iface is None or iface.elements[item.tag][1] != "fault":
        raise Failure(xpath(item), f"{item.tag} is not a fault element the WSDLs declare")
    return f"Fault ({'faultcode' if env_ns == SOAP11_ENV else 'Code'} {value}), detail {validate_message(item)}", item.tag


def choices(qname: str) -> list[str]:
    """The branches of a message element whose type is a choice (e.g.
    SubmitBalancesResponse: accepted, rejected); [''] for any other."""
    iface = element_interface(qname)
    xsd = iface.schema.elements.get(etree.QName(qname).localname) if iface else None
    content = xsd.type.content if xsd is not None else None
    if getattr(content, "model", None) != "choice":
        return [""]
    return [e.local_name for e in content.iter_elements()]


def branch(elem: etree._Element) -> str:
    """The choice branch a (valid) message element takes, '' for none."""
    if choices(elem.tag) == [""]:
        return ""
    child = next((c for c in elem if isinstance(c.tag, str)), None)
    return etree.QName(child).localname if child is not None else ""


Validated = tuple[str, str, str]  # (SOAP version or 'bare', message or fault-detail QName, choice branch)


def check_document(path: Path, expect: tuple[str, str | None] | None, allow_bare: bool) -> tuple[str, Validated]:
    """Checks one file. `expect` is (SOAP version, body element QName or
    'Fault') from the sample's name, or None. Returns a summary and what was
    validated."""
    root = parse(path).getroot()
    env_ns = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or env_ns not in SOAP_VERSION:
        if allow_bare and element_interface(root.tag) is not None:
            return f"bare {validate_message(root)}", ("bare", root.tag, branch(root))
        raise Failure(xpath(root), f"root is {root.tag}, expected a SOAP 1.1 or 1.2 Envelope" + (" or a WSDL message element" if allow_bare else ""))
    version = SOAP_VERSION[env_ns]
    if expect is not None and expect[0] != version:
        raise Failure(xpath(root), f"SOAP {version} envelope ({env_ns}) but the file name says SOAP {expect[0]}")
    children = only_child_elements(root)
    names = [c.tag for c in children]
    header, body = f"{{{env_ns}}}Header", f"{{{env_ns}}}Body"
    if names not in ([body], [header, body]):
        raise Failure(xpath(root), f"Envelope children are {[etree.QName(n).localname for n in names]}, expected [Header,] Body")
    body_el = children[-1]
    items = only_child_elements(body_el)
    if len(items) != 1:
        raise Failure(xpath(body_el), f"expected exactly one Body child (document/literal wrapped), found {len(items)}")
    item = items[0]
    if item.tag == f"{{{env_ns}}}Fault":
        if expect is not None and expect[1] != "Fault":
            raise Failure(xpath(item), f"a Fault, but the file name says {expect[1]}")
        summary, detail = check_fault(item, env_ns)
        return f"SOAP {version} {summary}", (version, detail, "")
    if expect is not None and item.tag != expect[1]:
        raise Failure(xpath(item), f"body element is {item.tag}, but the file name says {expect[1]}")
    return f"SOAP {version} {validate_message(item)}", (version, item.tag, branch(item))


def expectation(path: Path) -> tuple[str, str]:
    """(SOAP version, expected body element or 'Fault') from a sample's name."""
    m = SAMPLE_NAME.match(path.name)
    if not m:
        raise Failure("/", "sample name must be <operation>-<request|response|declined|rejected|fault>.soap<11|12>.xml")
    op = "".join(w.capitalize() for w in m["op"].split("-"))
    iface = next((i for i in INTERFACES if op in i.operations), None)
    if iface is None:
        raise Failure("/", f"no operation {op!r} in the WSDLs (from the file name)")
    role = m["role"]
    version = "1.1" if m["ver"] == "11" else "1.2"
    if role == "fault":
        return version, "Fault"
    if role == "request":
        return version, f"{{{iface.namespace}}}{op}"
    return version, f"{{{iface.namespace}}}{op}Response"


def check_file(checker: Checker, path: Path, sample: bool) -> Validated | None:
    """Checks one file; returns what it validated (see check_document), None on failure."""
    try:
        # Canonical samples must be named for what they hold; other files are
        # held to their name only when it follows the same pattern.
        expect = expectation(path) if sample or SAMPLE_NAME.match(path.name) else None
        summary, validated = check_document(path, expect, allow_bare=not sample)
    except Failure as f:
        checker.fail(path, f.where, f.reason)
        return None
    checker.ok(path, summary)
    return validated


def check_coverage(checker: Checker, validated: set[Validated], namespace: str, folder: Path, writer: str) -> None:
    """Every answer (output, each branch of a choice) and fault element of
    the WSDL of `namespace` was rendered into `folder`, in SOAP 1.1 and 1.2,
    and passed."""
    iface = next(i for i in INTERFACES if i.namespace == namespace)
    wanted = {
        (version, qname, choice)
        for version in SOAP_VERSION.values()
        for qname, (_, role) in iface.elements.items()
        if role in ("output", "fault")
        for choice in choices(qname)
    }
    missing = sorted(wanted - validated)
    if missing:
        names = ", ".join(f"SOAP {v} {etree.QName(q).localname}{'/' + c if c else ''}" for v, q, c in missing)
        checker.fail(folder, "/", f"no valid rendered {names} (written by `{writer}`)")
    else:
        checker.ok(folder, f"every {iface.wsdl} answer and fault rendered in SOAP 1.1 and 1.2 ({len(wanted)} element/branch/version combinations)")


def xml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.xml") if p.is_file())


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    checker = Checker()

    ready = True
    for iface in INTERFACES:
        ready &= load_schema(checker, iface)
    for iface in INTERFACES:
        if iface.schema is not None:
            ready &= load_wsdl(checker, iface)
    if not ready:
        print(f"check-wsdl: {checker.failures} failure(s); samples not checked", file=sys.stderr)
        return 1

    if argv:
        for arg in argv:
            p = Path(arg)
            if not p.exists():
                print(f"check-wsdl: no such file or folder: {arg}", file=sys.stderr)
                return 2
            for f in xml_files(p) if p.is_dir() else [p]:
                check_file(checker, f, sample=False)
    else:
        samples = xml_files(CANONICAL) if CANONICAL.is_dir() else []
        present = {p.name for p in samples if p.parent == CANONICAL}
        for name in REQUIRED_SAMPLES:
            if name not in present:
                checker.fail(CANONICAL / name, "/", "required sample is missing")
        for f in samples:
            check_file(checker, f, sample=True)
        if RENDERED.is_dir():
            rendered = xml_files(RENDERED)
            if not rendered:
                print(f"--    {checker.rel(RENDERED)}/  no *.xml files")
            covered = {HUB_RENDERED: set(), REFSYS_RENDERED: set()}
            for f in rendered:
                validated = check_file(checker, f, sample=False)
                for folder, seen in covered.items():
                    if validated is not None and folder in f.parents:
                        seen.add(validated)
            if HUB_RENDERED.is_dir():
                check_coverage(checker, covered[HUB_RENDERED], HUB_NS, HUB_RENDERED, "cargo test --lib api::hub_soap")
            if REFSYS_RENDERED.is_dir():
                check_coverage(checker, covered[REFSYS_RENDERED], AS_NS, REFSYS_RENDERED, "cargo test --test refsys")

    if checker.failures:
        print(f"check-wsdl: {checker.failures} of {checker.checked} check(s) failed", file=sys.stderr)
        return 1
    print(f"check-wsdl: {checker.checked} file(s) ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
