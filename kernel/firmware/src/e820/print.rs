//! Printing the E820 table like Linux's `e820__print_table`: one line per entry,
//! `<who>: [mem 0x%016x-0x%016x] <label>` with the end inclusive, `who` being `BIOS-e820` for
//! the firmware map and `user` for the map after `memmap=`.

use core::fmt;

use super::{E820Entry, E820Table};

/// One printed table line (without a newline); see [`E820Entry::line`].
#[derive(Clone, Copy, Debug)]
pub struct EntryLine<'a> {
    who: &'a str,
    entry: E820Entry,
}

impl fmt::Display for EntryLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Linux prints addr + size - 1; saturate so that an entry reaching the top of the
        // address space prints 0xffffffffffffffff and an (unsanitized) empty one prints addr.
        let e = &self.entry;
        let last = e.addr.saturating_add(e.size.saturating_sub(1));
        write!(
            f,
            "{}: [mem {:#018x}-{:#018x}] {}",
            self.who,
            e.addr,
            last,
            e.typ.label()
        )
    }
}

impl E820Entry {
    /// The entry's boot-log line, e.g. `BIOS-e820: [mem 0x0000000000000000-0x000000000009fbff]
    /// usable` for `who = "BIOS-e820"`.
    pub fn line<'a>(&self, who: &'a str) -> EntryLine<'a> {
        EntryLine { who, entry: *self }
    }
}

/// The whole table as printed lines, each followed by `\n`; see [`E820Table::lines`].
#[derive(Clone, Copy, Debug)]
pub struct TableLines<'a> {
    who: &'a str,
    table: &'a E820Table,
}

impl fmt::Display for TableLines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in self.table.entries() {
            writeln!(f, "{}", e.line(self.who))?;
        }
        Ok(())
    }
}

impl E820Table {
    /// Displays the table as Linux prints it at boot, one `\n`-terminated line per entry.
    pub fn lines<'a>(&'a self, who: &'a str) -> TableLines<'a> {
        TableLines { who, table: self }
    }

    /// Logs the table at info level, one `log` record per entry (`who` is `BIOS-e820` or
    /// `user`).
    pub fn log(&self, who: &str) {
        for e in self.entries() {
            log::info!("{}", e.line(who));
        }
    }

    /// Logs `user-defined physical RAM map:` and the table with the `user` prefix, as Linux
    /// does after `memmap=` changed the map.
    pub fn log_user_map(&self) {
        log::info!("user-defined physical RAM map:");
        self.log("user");
    }
}
