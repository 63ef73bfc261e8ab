//! The condition expression: parsing (`not` > `and` > `or`, parentheses, `1 of x*`,
//! `all of them`) and evaluation over selection results.

use super::error::ErrorKind;

/// Nesting limit of parentheses and `not`, so a hostile condition cannot overflow the stack.
const MAX_DEPTH: usize = 64;

/// A parsed condition; selections are indices into the rule's selection list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expr {
    Sel(usize),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `1 of x*` / `any of x*` / `1 of them`.
    OneOf(Vec<usize>),
    /// `all of x*` / `all of them`.
    AllOf(Vec<usize>),
}

impl Expr {
    /// Evaluates the expression; `sel(i)` tells whether selection `i` matches (called lazily, so
    /// `and`/`or` short-circuit).
    pub(super) fn eval(&self, sel: &mut dyn FnMut(usize) -> bool) -> bool {
        match self {
            Expr::Sel(i) => sel(*i),
            Expr::And(v) => v.iter().all(|e| e.eval(sel)),
            Expr::Or(v) => v.iter().any(|e| e.eval(sel)),
            Expr::Not(e) => !e.eval(sel),
            Expr::OneOf(v) => v.iter().any(|&i| sel(i)),
            Expr::AllOf(v) => v.iter().all(|&i| sel(i)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    Open,
    Close,
    Word(&'a str),
}

fn lex(s: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in s.char_indices() {
        if c.is_whitespace() || c == '(' || c == ')' {
            if let Some(st) = start.take() {
                out.push(Tok::Word(&s[st..i]));
            }
            if c == '(' {
                out.push(Tok::Open);
            } else if c == ')' {
                out.push(Tok::Close);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(Tok::Word(&s[st..]));
    }
    out
}

/// `*` glob over a selection name.
fn glob(pat: &str, name: &str) -> bool {
    let parts: Vec<&str> = pat.split('*').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() == 1 {
        return pat == name;
    }
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for p in &parts[1..parts.len() - 1] {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    true
}

struct Parser<'a, 'n> {
    toks: Vec<Tok<'a>>,
    pos: usize,
    names: &'n [String],
    text: &'a str,
}

/// Parses `condition` against the rule's selection names.
pub(super) fn parse(condition: &str, names: &[String]) -> Result<Expr, ErrorKind> {
    if condition.contains('|') {
        return Err(ErrorKind::Unsupported(
            "aggregation in condition (`| count()` ...); use a correlation rule".into(),
        ));
    }
    let mut p = Parser { toks: lex(condition), pos: 0, names, text: condition };
    let e = p.or(0)?;
    match p.toks.get(p.pos) {
        None => Ok(e),
        Some(t) => Err(p.err(&format!("unexpected {}", describe(t)))),
    }
}

fn describe(t: &Tok<'_>) -> String {
    match t {
        Tok::Open => "`(`".into(),
        Tok::Close => "`)`".into(),
        Tok::Word(w) => format!("`{w}`"),
    }
}

impl Parser<'_, '_> {
    fn err(&self, message: &str) -> ErrorKind {
        ErrorKind::Condition { condition: self.text.to_owned(), message: message.to_owned() }
    }

    fn peek_word(&self, w: &str) -> bool {
        self.toks.get(self.pos) == Some(&Tok::Word(w))
    }

    fn or(&mut self, depth: usize) -> Result<Expr, ErrorKind> {
        let mut v = vec![self.and(depth)?];
        while self.peek_word("or") {
            self.pos += 1;
            v.push(self.and(depth)?);
        }
        Ok(if v.len() == 1 { v.remove(0) } else { Expr::Or(v) })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, ErrorKind> {
        let mut v = vec![self.not(depth)?];
        while self.peek_word("and") {
            self.pos += 1;
            v.push(self.not(depth)?);
        }
        Ok(if v.len() == 1 { v.remove(0) } else { Expr::And(v) })
    }

    fn not(&mut self, depth: usize) -> Result<Expr, ErrorKind> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        if self.peek_word("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Expr, ErrorKind> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            None => Err(self.err("unexpected end")),
            Some(Tok::Close) => Err(self.err("unexpected `)`")),
            Some(Tok::Open) => {
                let e = self.or(depth + 1)?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return Err(self.err("missing `)`"));
                }
                self.pos += 1;
                Ok(e)
            }
            Some(Tok::Word(w @ ("1" | "any" | "all"))) if self.peek_word("of") => {
                self.pos += 1;
                let target = match self.toks.get(self.pos) {
                    Some(Tok::Word(t)) => *t,
                    _ => return Err(self.err(&format!("`{w} of` needs a name pattern or `them`"))),
                };
                self.pos += 1;
                let ids: Vec<usize> = if target == "them" {
                    // Per the spec, `them` leaves out names starting with `_`.
                    (0..self.names.len()).filter(|&i| !self.names[i].starts_with('_')).collect()
                } else {
                    (0..self.names.len()).filter(|&i| glob(target, &self.names[i])).collect()
                };
                if ids.is_empty() {
                    return Err(ErrorKind::EmptyPattern(format!("{w} of {target}")));
                }
                Ok(if w == "all" { Expr::AllOf(ids) } else { Expr::OneOf(ids) })
            }
            Some(Tok::Word(w)) if w.chars().all(|c| c.is_ascii_digit()) && self.peek_word("of") => {
                Err(ErrorKind::Unsupported(format!("`{w} of`: only `1 of` and `all of` exist")))
            }
            Some(Tok::Word(w @ ("and" | "or" | "of"))) => Err(self.err(&format!("unexpected `{w}`"))),
            Some(Tok::Word(w)) => match self.names.iter().position(|n| n == w) {
                Some(i) => Ok(Expr::Sel(i)),
                None => Err(ErrorKind::UnknownSelection(w.to_owned())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["selection", "sel_a", "sel_b", "filter", "_hidden"].iter().map(|s| s.to_string()).collect()
    }

    /// Evaluates `cond` with the selections whose bit is set in `mask` matching.
    fn eval(cond: &str, mask: u32) -> bool {
        match parse(cond, &names()) {
            Ok(e) => e.eval(&mut |i| mask & (1 << i) != 0),
            Err(e) => panic!("{cond}: {e}"),
        }
    }

    #[test]
    fn precedence_not_and_or() {
        // not binds tighter than and: `not selection and filter` = (not selection) and filter.
        assert!(eval("not selection and filter", 0b01000));
        assert!(!eval("not selection and filter", 0b01001));
        // and binds tighter than or.
        assert!(eval("selection or sel_a and sel_b", 0b00001));
        assert!(!eval("selection or sel_a and sel_b", 0b00010));
        assert!(!eval("(selection or sel_a) and sel_b", 0b00001));
        assert!(eval("not (selection or filter)", 0));
        assert!(!eval("not (selection or filter)", 0b01000));
        assert!(eval("not not selection", 1));
    }

    #[test]
    fn of_forms() {
        assert!(eval("1 of sel_*", 0b00100));
        assert!(!eval("1 of sel_*", 0b00001));
        assert!(!eval("all of sel_*", 0b00010));
        assert!(eval("all of sel_*", 0b00110));
        assert!(eval("any of sel_*", 0b00010));
        // `them` leaves out `_hidden`.
        assert!(eval("all of them", 0b01111));
        assert!(!eval("all of them", 0b10111));
        assert!(eval("1 of them", 0b01000));
        assert!(!eval("1 of them", 0b10000));
        assert!(eval("selection and not 1 of f*", 0b00001));
        assert!(!eval("selection and not 1 of f*", 0b01001));
        assert!(eval("1 of s*_b", 0b00100));
    }

    #[test]
    fn errors() {
        let n = names();
        assert_eq!(parse("selection and sel2", &n), Err(ErrorKind::UnknownSelection("sel2".into())));
        assert!(matches!(parse("all of nothing*", &n), Err(ErrorKind::EmptyPattern(_))));
        assert!(matches!(parse("(selection", &n), Err(ErrorKind::Condition { .. })));
        assert!(matches!(parse("selection)", &n), Err(ErrorKind::Condition { .. })));
        assert!(matches!(parse("selection and", &n), Err(ErrorKind::Condition { .. })));
        assert!(matches!(parse("", &n), Err(ErrorKind::Condition { .. })));
        assert!(matches!(parse("2 of sel*", &n), Err(ErrorKind::Unsupported(_))));
        assert!(matches!(parse("selection | count() > 5", &n), Err(ErrorKind::Unsupported(_))));
        let deep = format!("{}selection{}", "(".repeat(500), ")".repeat(500));
        assert!(matches!(parse(&deep, &n), Err(ErrorKind::Condition { .. })));
        let nots = format!("{}selection", "not ".repeat(5000));
        assert!(parse(&nots, &n).is_err());
    }

    #[test]
    fn glob_names() {
        assert!(glob("sel*", "selection"));
        assert!(glob("*ion", "selection"));
        assert!(glob("s*l*n", "selection"));
        assert!(!glob("s*x*n", "selection"));
        assert!(!glob("selection_a", "selection"));
        assert!(!glob("ab*ba", "aba"));
    }
}
