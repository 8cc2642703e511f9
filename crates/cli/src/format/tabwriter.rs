//! A port of Go's `text/tabwriter` for the settings docker uses
//! (`NewWriter(out, 10, 1, 3, ' ', 0)`): cells are tab-terminated, the last cell of a line
//! is not aligned, a column block is a run of adjacent lines that have that column, and a
//! column is as wide as its widest cell plus padding, at least `minwidth`.

pub struct TabWriter {
    minwidth: usize,
    padding: usize,
}

struct Cell {
    text: String,
    width: usize,
}

impl TabWriter {
    pub fn docker() -> Self {
        TabWriter {
            minwidth: 10,
            padding: 3,
        }
    }

    pub fn new(minwidth: usize, padding: usize) -> Self {
        TabWriter { minwidth, padding }
    }

    /// Align `text` (lines separated by '\n', cells by '\t').
    pub fn format(&self, text: &str) -> String {
        let trailing_newline = text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines: Vec<Vec<Cell>> = body
            .split('\n')
            .map(|l| {
                l.split('\t')
                    .map(|c| Cell {
                        text: c.to_string(),
                        width: c.chars().count(),
                    })
                    .collect()
            })
            .collect();
        let mut out = String::new();
        let mut widths = Vec::new();
        self.format_block(&lines, &mut widths, 0, lines.len(), &mut out);
        if trailing_newline {
            out.push('\n');
        }
        out
    }

    fn format_block(
        &self,
        lines: &[Vec<Cell>],
        widths: &mut Vec<usize>,
        mut line0: usize,
        line1: usize,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(lines, widths, line0, this, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].width + self.padding);
                this += 1;
            }
            widths.push(width);
            self.format_block(lines, widths, line0, this, out);
            widths.pop();
            line0 = this;
        }
        self.write_lines(lines, widths, line0, line1, out);
    }

    fn write_lines(
        &self,
        lines: &[Vec<Cell>],
        widths: &[usize],
        line0: usize,
        line1: usize,
        out: &mut String,
    ) {
        for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
            for (j, c) in line.iter().enumerate() {
                out.push_str(&c.text);
                if j < widths.len() && j + 1 < line.len() {
                    out.extend(std::iter::repeat_n(' ', widths[j].saturating_sub(c.width)));
                }
            }
            if i + 1 < lines.len() {
                out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_table_layout() {
        let tw = TabWriter::docker();
        let s = tw.format("REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE\nbusybox\tlatest\t09ac58b48f8f\t2 minutes ago\t1.98MB\n");
        assert_eq!(
            s,
            "REPOSITORY   TAG       IMAGE ID       CREATED         SIZE\n\
             busybox      latest    09ac58b48f8f   2 minutes ago   1.98MB\n"
        );
    }

    #[test]
    fn blocks_break_on_short_lines() {
        let tw = TabWriter::new(0, 1);
        let s = tw.format("a\tb\nlonger\tc\nx\nyy\tz\n");
        assert_eq!(s, "a      b\nlonger c\nx\nyy z\n");
    }

    #[test]
    fn unicode_width_counts_runes() {
        let tw = TabWriter::new(0, 3);
        let s = tw.format("\"sh…\"\tx\n\"abcd\"\ty\n");
        assert_eq!(s, "\"sh…\"    x\n\"abcd\"   y\n");
    }
}
