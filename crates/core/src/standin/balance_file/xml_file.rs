//! XML balance files: one element per account at a path from the root,
//! read as a stream of quick-xml events (a file is never a tree in memory).
//!
//! Hardened like the answer reader in `adapter::xml`: a DOCTYPE is refused
//! (so no entity can be declared), only the five predefined entities and
//! character references are expanded, depth and the size of each tag or
//! text are bounded, and anything not well-formed ends the read with its
//! line.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;

use quick_xml::XmlVersion;
use quick_xml::escape::{EscapeError, resolve_predefined_entity};
use quick_xml::events::{BytesDecl, BytesRef, BytesStart, Event};
use quick_xml::name::{NamespaceResolver, ResolveResult};
use quick_xml::reader::NsReader;

use super::{
    BalanceFileError, BalanceRow, Collector, CurrencyFrom, Source, TimeText, XmlFormat, account,
    amount_syntax, currency, decimal_amount,
};
use crate::mask::redact_pans;
use crate::money::Currency;
use crate::store::StoreError;
use crate::xml::{is_name, is_xml_char, is_xml_space};

/// Elements open at once (the root is depth 1).
const MAX_DEPTH: usize = 64;
/// Bytes of one captured value before trimming.
const MAX_TEXT: usize = 1024;

const ACCOUNT: usize = 0;
const AVAILABLE: usize = 1;
const CURRENCY: usize = 2;

/// A checked [`XmlFormat`].
pub(super) struct XmlReader {
    record: Vec<String>,
    /// Account, available, currency (absent when fixed), from the record.
    fields: [Option<Path>; 3],
    currency: Option<Currency>,
    /// From the root.
    as_of: Option<Path>,
    time: TimeText,
}

/// Element steps, then maybe an attribute: `A/B`, `@id`, `A/@ccy`.
struct Path {
    text: String,
    steps: Vec<String>,
    attribute: Option<String>,
}

/// Where the walk through the events is.
struct Walk<'r> {
    format: &'r XmlReader,
    /// Local names of the open elements.
    stack: Vec<String>,
    root_seen: bool,
    record: Option<Record>,
    capture: Option<Capture>,
}

/// A record element being read.
struct Record {
    /// `stack` length with the record element open.
    depth: usize,
    line: u64,
    /// Value and line of each field, as `XmlReader::fields`.
    values: [Option<(String, u64)>; 3],
}

#[derive(Clone, Copy)]
enum Target {
    Field(usize),
    AsOf,
}

/// The text of an element being collected.
struct Capture {
    target: Target,
    depth: usize,
    line: u64,
    text: String,
    too_long: bool,
}

/// Counts lines in the bytes the XML reader consumes, so an event's byte
/// position becomes a line. Keeps the line breaks of the current event
/// only.
struct Lines<B> {
    inner: B,
    count: LineCount,
}

struct LineCount {
    consumed: u64,
    /// Line of the byte at the last `settle` position.
    line: u64,
    /// Offsets of line breaks consumed after that position.
    breaks: VecDeque<u64>,
    /// Line of the first byte past ASCII.
    non_ascii_line: Option<u64>,
}

impl XmlReader {
    pub(super) fn compile(f: &XmlFormat, problems: &mut Vec<String>) -> Option<XmlReader> {
        let record = Path::parse(&f.record, "record", problems);
        if record.as_ref().is_some_and(|r| r.attribute.is_some()) {
            problems.push("record: a path of elements, no @attribute".into());
        }
        let account = Path::parse(&f.account, "account", problems);
        let available = Path::parse(&f.available, "available", problems);
        let currency_path = f
            .currency
            .as_ref()
            .and_then(|p| Path::parse(p, "currency", problems));
        let paths = [&account, &available, &currency_path];
        for (i, (key, path)) in ["account", "available", "currency"]
            .iter()
            .zip(paths)
            .enumerate()
        {
            let Some(path) = path else { continue };
            if let Some(other) = paths[..i]
                .iter()
                .position(|p| p.as_ref().is_some_and(|p| p.text == path.text))
            {
                let other = ["account", "available", "currency"][other];
                problems.push(format!("{key}: the same path as {other}"));
            }
        }
        let fixed = CurrencyFrom::choose(
            f.currency.as_deref(),
            f.currency_code.as_deref(),
            ("currency", "currency_code"),
            problems,
        );
        let as_of = f
            .as_of
            .as_ref()
            .and_then(|p| Path::parse(p, "as_of", problems));
        if let (Some(as_of), Some(record)) = (&as_of, &record)
            && let Some(root) = record.steps.first()
            && as_of.steps.first() != Some(root)
        {
            problems.push(format!("as_of: a path from the root, starting {root}/"));
        }
        let time = TimeText::compile(
            f.as_of_format.as_deref(),
            f.time_zone.as_deref(),
            "",
            problems,
        );
        let record = record?;
        if record.steps.is_empty() {
            problems.push("record: at least the root element".into());
            return None;
        }
        Some(XmlReader {
            record: record.steps,
            fields: [account, available, currency_path],
            currency: match fixed? {
                CurrencyFrom::Fixed(currency) => Some(currency),
                CurrencyFrom::Row(_) => None,
            },
            as_of,
            time,
        })
    }

    pub(super) fn read<R: Read, S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        source: &mut Source<R>,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        let mut reader = NsReader::from_reader(Lines::new(BufReader::new(source)));
        let config = reader.config_mut();
        config.enable_all_checks(true);
        config.expand_empty_elements = true;
        let mut walk = Walk {
            format: self,
            stack: Vec::new(),
            root_seen: false,
            record: None,
            capture: None,
        };
        let mut version = XmlVersion::Implicit1_0;
        let mut declared = None;
        let mut buf = Vec::new();
        let mut first = true;
        while !c.stopped {
            let position = reader.buffer_position();
            let lines = reader.get_mut();
            lines.count.settle(position);
            lines.inner.get_mut().record_at(position);
            let line = lines.count.line;
            buf.clear();
            let event = match reader.read_event_into(&mut buf) {
                Ok(event) => event,
                Err(e) => {
                    // An input error is where the event began; bad XML where it was found.
                    let at = reader.error_position().max(position);
                    let line = match e {
                        quick_xml::Error::Io(_) => line,
                        _ => reader.get_mut().count.line_at(at),
                    };
                    return xml_error(e, line, c);
                }
            };
            match event {
                Event::Decl(decl) if first => {
                    (version, declared) = declaration(&decl, line, c);
                }
                Event::Decl(_) => c.fatal(line, None, "XML declaration not at the start"),
                Event::DocType(_) => c.fatal(line, None, "DOCTYPE refused: no DTDs or entities"),
                Event::Start(start) => walk.open(&start, reader.resolver(), line, version, c),
                Event::Empty(start) => {
                    walk.open(&start, reader.resolver(), line, version, c);
                    walk.close(c)?;
                }
                Event::End(_) => walk.close(c)?,
                Event::Text(text) => walk.text(&text.xml_content(version), line, c),
                Event::CData(text) => walk.text(&text.xml_content(version), line, c),
                Event::GeneralRef(reference) => walk.reference(&reference, line, c),
                Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => {
                    walk.end(line, c);
                    break;
                }
            }
            first = false;
        }
        let non_ascii = reader.get_mut().count.non_ascii_line;
        if let (Some(declared), Some(line), false) = (declared, non_ascii, c.stopped) {
            let reason =
                format!("declares encoding {declared:?} and is not ASCII; only UTF-8 is read");
            let reason = redact_pans(&reason);
            c.problem(line, None, reason);
        }
        Ok(())
    }
}

/// The XML version, and a declared encoding other than UTF-8 (then the
/// file must be ASCII to read the same).
fn declaration<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
    decl: &BytesDecl,
    line: u64,
    c: &mut Collector<S>,
) -> (XmlVersion, Option<String>) {
    let version = decl.xml_version().unwrap_or_else(|e| {
        c.fatal(line, None, redact_pans(&format!("malformed XML: {e}")));
        XmlVersion::Implicit1_0
    });
    let declared = match decl.encoding() {
        Some(Ok(name)) if !name.eq_ignore_ascii_case("utf-8") => Some(name.into_owned()),
        Some(Err(e)) => {
            c.fatal(line, None, redact_pans(&format!("malformed XML: {e}")));
            None
        }
        _ => None,
    };
    (version, declared)
}

/// A reader error: a passed limit or bad XML ends the read as a problem;
/// an input failure is returned.
fn xml_error<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
    error: quick_xml::Error,
    line: u64,
    c: &mut Collector<S>,
) -> Result<(), BalanceFileError> {
    if let quick_xml::Error::Io(io) = error {
        let io = Arc::try_unwrap(io).unwrap_or_else(|io| io::Error::new(io.kind(), io.to_string()));
        return c.io(io, line);
    }
    c.fatal(line, None, malformed(&error));
    Ok(())
}

fn malformed(error: &quick_xml::Error) -> String {
    match error {
        quick_xml::Error::Encoding(_) => "not UTF-8 text".to_owned(),
        quick_xml::Error::Escape(EscapeError::UnrecognizedEntity(_, name)) => {
            redact_pans(&format!("undeclared entity &{name};"))
        }
        // quick-xml's messages quote the file's markup.
        other => redact_pans(&format!("malformed XML: {other}")),
    }
}

impl Path {
    fn parse(text: &str, key: &str, problems: &mut Vec<String>) -> Option<Path> {
        let mut path = Path {
            text: text.to_owned(),
            steps: Vec::new(),
            attribute: None,
        };
        let mut bad = None;
        for step in text.split('/') {
            if path.attribute.is_some() {
                bad = Some("an @attribute can only be the last step");
            } else if let Some(name) = step.strip_prefix('@') {
                path.attribute = Some(name.to_owned());
            } else {
                path.steps.push(step.to_owned());
            }
        }
        let names = path.steps.iter().chain(&path.attribute);
        if text.is_empty() || names.clone().any(|n| !is_name(n)) {
            bad = Some("steps are local names (no prefix:), separated by /");
        }
        match bad {
            Some(reason) => {
                problems.push(format!("{key}: {text:?}: {reason}"));
                None
            }
            None => Some(path),
        }
    }

    /// Whether the element at `stack` is the path's element.
    fn is_at(&self, stack: &[String]) -> bool {
        self.steps.as_slice() == stack
    }
}

impl Walk<'_> {
    fn open<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &mut self,
        start: &BytesStart,
        resolver: &NamespaceResolver,
        line: u64,
        version: XmlVersion,
        c: &mut Collector<S>,
    ) {
        let format = self.format;
        let (ns, local) = resolver.resolve_element(start.name());
        if let ResolveResult::Unknown(prefix) = ns {
            return c.fatal(
                line,
                None,
                redact_pans(&format!("undeclared namespace prefix {prefix:?}")),
            );
        }
        let name = local.into_inner();
        if self.stack.is_empty() {
            let root = &format.record[0];
            if self.root_seen {
                return c.fatal(
                    line,
                    None,
                    redact_pans(&format!("a second root element <{name}>")),
                );
            } else if name != root {
                let reason = format!("the root element is <{name}>, the format expects <{root}>");
                let reason = redact_pans(&reason);
                return c.fatal(line, None, reason);
            }
            self.root_seen = true;
        }
        if self.stack.len() >= MAX_DEPTH {
            return c.fatal(
                line,
                None,
                format!("elements nested deeper than {MAX_DEPTH}"),
            );
        }
        self.stack.push(name.to_owned());
        let depth = self.stack.len();
        if self.record.is_none() && self.stack == format.record {
            self.record = Some(Record {
                depth,
                line,
                values: Default::default(),
            });
        }
        // The attributes this element must give, by target.
        let mut targets: Vec<(Target, &Path)> = Vec::new();
        if let Some(record) = &self.record {
            let within = &self.stack[record.depth..];
            for (i, path) in format.fields.iter().enumerate() {
                if let Some(path) = path.as_ref().filter(|p| p.is_at(within)) {
                    targets.push((Target::Field(i), path));
                }
            }
        }
        if let Some(path) = format.as_of.as_ref().filter(|p| p.is_at(&self.stack)) {
            targets.push((Target::AsOf, path));
        }
        let mut wanted: Vec<(Target, &str)> = Vec::new();
        for (target, path) in targets {
            match &path.attribute {
                Some(attribute) => wanted.push((target, attribute)),
                None => self.capture(target, depth, line),
            }
        }
        // Every attribute is checked, the wanted ones kept.
        for attr in start.attributes() {
            let attr = match attr {
                Ok(attr) => attr,
                Err(e) => return c.fatal(line, None, redact_pans(&format!("malformed XML: {e}"))),
            };
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (ns, local) = resolver.resolve_attribute(attr.key);
            if let ResolveResult::Unknown(prefix) = ns {
                return c.fatal(
                    line,
                    None,
                    redact_pans(&format!("undeclared namespace prefix {prefix:?}")),
                );
            }
            let value = match attr.normalized_value(version) {
                Ok(value) => value,
                Err(e) => return c.fatal(line, None, malformed(&e)),
            };
            let local = local.into_inner();
            for &(target, _) in wanted.iter().filter(|(_, a)| *a == local) {
                self.store(target, value.trim_matches(is_xml_space), line, c);
            }
        }
    }

    fn capture(&mut self, target: Target, depth: usize, line: u64) {
        if self.capture.is_none() {
            self.capture = Some(Capture {
                target,
                depth,
                line,
                text: String::new(),
                too_long: false,
            });
        }
    }

    /// A value found: a field of the current record or the file's as-of.
    fn store<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &mut self,
        target: Target,
        text: &str,
        line: u64,
        c: &mut Collector<S>,
    ) {
        let format = self.format;
        match target {
            Target::Field(i) => {
                let (Some(record), Some(path)) = (&mut self.record, &format.fields[i]) else {
                    return;
                };
                match &record.values[i] {
                    Some((_, first)) => {
                        let reason = format!("appears twice in the record (first on line {first})");
                        c.problem(line, Some(&path.text), reason);
                    }
                    None => record.values[i] = Some((text.to_owned(), line)),
                }
            }
            Target::AsOf => {
                let Some(path) = &format.as_of else { return };
                c.file_as_of(format.time.parse(text), line, &path.text);
            }
        }
    }

    fn text<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &mut self,
        text: &str,
        line: u64,
        c: &mut Collector<S>,
    ) {
        if self.stack.is_empty() {
            if !text.chars().all(is_xml_space) {
                c.fatal(line, None, "text outside the root element");
            }
            return;
        }
        let depth = self.stack.len();
        if let Some(capture) = self.capture.as_mut().filter(|cap| cap.depth == depth) {
            if capture.text.len() + text.len() > MAX_TEXT {
                capture.too_long = true;
            } else {
                capture.text.push_str(text);
            }
        }
    }

    fn reference<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &mut self,
        reference: &BytesRef,
        line: u64,
        c: &mut Collector<S>,
    ) {
        let name: &str = reference;
        let mut buf = [0; 4];
        let resolved = if reference.is_char_ref() {
            match reference.resolve_char_ref() {
                Ok(Some(ch)) if is_xml_char(ch) => &*ch.encode_utf8(&mut buf),
                _ => {
                    return c.fatal(
                        line,
                        None,
                        redact_pans(&format!("invalid character reference &{name};")),
                    );
                }
            }
        } else {
            match resolve_predefined_entity(name) {
                Some(resolved) => resolved,
                None => {
                    let reason = redact_pans(&format!("undeclared entity &{name};"));
                    return c.fatal(line, None, reason);
                }
            }
        };
        if self.stack.is_empty() {
            return c.fatal(line, None, "a reference outside the root element");
        }
        self.text(resolved, line, c);
    }

    fn close<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &mut self,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        let depth = self.stack.len();
        if let Some(capture) = self.capture.take_if(|cap| cap.depth == depth) {
            if capture.too_long {
                let column = match capture.target {
                    Target::Field(i) => self.format.fields[i].as_ref().map(|p| p.text.clone()),
                    Target::AsOf => self.format.as_of.as_ref().map(|p| p.text.clone()),
                };
                let reason = format!("longer than {MAX_TEXT} bytes");
                c.problem(capture.line, column.as_deref(), reason);
            } else {
                let text = capture.text.trim_matches(is_xml_space);
                self.store(capture.target, text, capture.line, c);
            }
        }
        if let Some(record) = self.record.take_if(|r| r.depth == depth) {
            self.row(record, c)?;
        }
        self.stack.pop();
        Ok(())
    }

    /// A record's fields checked; all present and good make a row.
    fn row<S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &self,
        record: Record,
        c: &mut Collector<S>,
    ) -> Result<(), BalanceFileError> {
        let format = self.format;
        let found = self.found(&record, ACCOUNT, c);
        let account = c.checked(found, account);
        let currency = match format.currency {
            Some(fixed) => Some(fixed),
            None => {
                let found = self.found(&record, CURRENCY, c);
                c.checked(found, currency)
            }
        };
        let found = self.found(&record, AVAILABLE, c);
        let available = c.checked(found, |text| match currency {
            Some(currency) => decimal_amount(text, currency),
            None => amount_syntax(text, false).map(|()| 0),
        });
        let (Some(account), Some(available_minor), Some(currency)) = (account, available, currency)
        else {
            return Ok(());
        };
        let row = BalanceRow {
            account,
            available_minor,
            currency,
            line: record.line,
        };
        let column = format.fields[ACCOUNT].as_ref().map_or("", |p| &p.text);
        c.row(row, column)
    }

    /// A field's text, line and path; its absence reported.
    fn found<'a, S: FnMut(BalanceRow) -> Result<(), StoreError>>(
        &'a self,
        record: &'a Record,
        field: usize,
        c: &mut Collector<S>,
    ) -> Option<(&'a str, u64, &'a str)> {
        let path = self.format.fields[field].as_ref()?;
        match &record.values[field] {
            Some((text, line)) => Some((text, *line, &path.text)),
            None => {
                c.problem(record.line, Some(&path.text), "missing from the record");
                None
            }
        }
    }

    fn end<S: FnMut(BalanceRow) -> Result<(), StoreError>>(&self, line: u64, c: &mut Collector<S>) {
        if let Some(open) = self.stack.last() {
            c.fatal(
                line,
                None,
                redact_pans(&format!("the file ends inside <{open}>: it is cut short")),
            );
        } else if !self.root_seen {
            c.fatal(line, None, "no root element");
        }
    }
}

impl<B> Lines<B> {
    fn new(inner: B) -> Self {
        Lines {
            inner,
            count: LineCount {
                consumed: 0,
                line: 1,
                breaks: VecDeque::new(),
                non_ascii_line: None,
            },
        }
    }
}

impl LineCount {
    fn note(&mut self, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' {
                self.breaks.push_back(self.consumed + i as u64);
            } else if !b.is_ascii() && self.non_ascii_line.is_none() {
                self.non_ascii_line = Some(self.line + self.breaks.len() as u64);
            }
        }
        self.consumed += bytes.len() as u64;
    }

    /// Everything before `position` is behind: its line breaks are counted.
    fn settle(&mut self, position: u64) {
        while self.breaks.front().is_some_and(|&at| at < position) {
            self.breaks.pop_front();
            self.line += 1;
        }
    }

    /// The line of `position`, at or after the last settled one.
    fn line_at(&self, position: u64) -> u64 {
        let before = self.breaks.iter().take_while(|&&at| at < position).count();
        self.line + before as u64
    }
}

impl<B: BufRead> Read for Lines<B> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.note(&buf[..n]);
        Ok(n)
    }
}

impl<B: BufRead> BufRead for Lines<B> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        if amount > 0 {
            // Already buffered: this does not read.
            if let Ok(buf) = self.inner.fill_buf() {
                let n = amount.min(buf.len());
                self.count.note(&buf[..n]);
            }
        }
        self.inner.consume(amount);
    }
}
