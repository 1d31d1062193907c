//! The live page served at `GET /` of `--metrics-listen` and `flashcrowd watch`: one
//! self-contained HTML file (inline CSS, JS and SVG charts; no font, script or image from
//! anywhere else, so it works offline and behind a firewall). It polls `/api/state?from=N` once
//! a second, keeps every second of the run itself, and steers the run with the control token
//! (`Authorization: Bearer`, typed into the page and kept in the tab's sessionStorage).

pub const HTML: &str = include_str!("page.html");

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_asks_nothing_of_another_origin() {
        let h = super::HTML;
        for bad in ["http://", "https://", "//cdn", "@import", "url(http"] {
            assert!(!h.contains(bad), "the page names `{bad}`");
        }
        assert!(h.contains("/api/state"));
    }
}
