//! Page-number paging as the v3 lists use it, reading both spellings of the parameters and
//! echoing filters into the `links`.

use serde_json::{Value, json};

use super::{PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX, RecordedRequest};
use crate::simulator::reply::ApiError;

#[derive(Clone, Copy)]
pub(super) enum PageStyle {
    /// `page[number]` / `page[size]` (JSON:API, connections and subscriptions specs)
    Bracket,
    /// `page` / `pageSize` (the signal list's documented links)
    Plain,
}

pub(super) struct Page {
    pub(super) number: usize,
    pub(super) size: usize,
    style: PageStyle,
}

pub(super) fn parse_positive(name: &str, raw: &str) -> Result<usize, ApiError> {
    match raw.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::validation(
            "INVALID_INPUT_FORMAT",
            format!("{name} must be a positive integer (got {raw:?})."),
        )),
    }
}

/// Reads either spelling of the page parameters. `all_by_default` (the signal list) gives every
/// item on one page when the caller sent no page parameter at all, and caps no page size: the
/// signal list documents neither a default size nor a maximum.
pub(super) fn parse_page(
    req: &RecordedRequest,
    total: usize,
    all_by_default: bool,
) -> Result<Page, ApiError> {
    let bracket_number = req.query_value("page[number]");
    let bracket_size = req.query_value("page[size]");
    let plain_number = req.query_value("page");
    let plain_size = req.query_value("pageSize");
    let style = if bracket_number.is_none()
        && bracket_size.is_none()
        && (plain_number.is_some() || plain_size.is_some())
    {
        PageStyle::Plain
    } else {
        PageStyle::Bracket
    };
    let number_raw = bracket_number.or(plain_number);
    let size_raw = bracket_size.or(plain_size);
    let number = match number_raw {
        Some(raw) => parse_positive("page[number]", raw)?,
        None => 1,
    };
    let size = match size_raw {
        Some(raw) => {
            let size = parse_positive("page[size]", raw)?;
            if size > PAGE_SIZE_MAX && !all_by_default {
                return Err(ApiError::validation(
                    "BAD_REQUEST",
                    format!("page[size] must be at most {PAGE_SIZE_MAX} (got {size})."),
                ));
            }
            size
        }
        None if all_by_default && number_raw.is_none() => total.max(1),
        None => PAGE_SIZE_DEFAULT,
    };
    Ok(Page {
        number,
        size,
        style,
    })
}

impl Page {
    fn last(&self, total: usize) -> usize {
        total.div_ceil(self.size).max(1)
    }

    pub(super) fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = (self.number - 1).saturating_mul(self.size).min(items.len());
        let end = start.saturating_add(self.size).min(items.len());
        &items[start..end]
    }

    fn link(&self, path: &str, extra: &str, number: usize) -> String {
        let page = match self.style {
            PageStyle::Bracket => format!("page[number]={number}&page[size]={}", self.size),
            PageStyle::Plain => format!("page={number}&pageSize={}", self.size),
        };
        format!("{path}?{extra}{page}")
    }

    /// `self, first, prev, previous, next, last`, with nulls past either end.
    pub(super) fn links(&self, path: &str, extra: &str, total: usize) -> Value {
        let last = self.last(total);
        let prev = (self.number > 1).then(|| self.link(path, extra, self.number - 1));
        let next = (self.number < last).then(|| self.link(path, extra, self.number + 1));
        json!({
            "self": self.link(path, extra, self.number),
            "first": self.link(path, extra, 1),
            "prev": prev,
            "previous": prev,
            "next": next,
            "last": self.link(path, extra, last),
        })
    }
}
