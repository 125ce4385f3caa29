//! The mode byte the ACPI table targets (nfit, srat, slit, madt) start with: bit 0 sets the
//! header's length field to the input's size, bit 1 makes the checksum good, so that the
//! fuzzer also gets past the whole-table checks into the subtables; the other bits are the
//! target's own.

use firmware::acpi::checksum;

/// Splits `data` into the mode byte and the table, applying bits 0 and 1.
pub fn table(data: &[u8]) -> Option<(u8, Vec<u8>)> {
    let (&mode, table) = data.split_first()?;
    let mut table = table.to_vec();
    if mode & 1 != 0 && table.len() >= 8 {
        let len = u32::try_from(table.len()).unwrap_or(u32::MAX);
        table[4..8].copy_from_slice(&len.to_le_bytes());
    }
    if mode & 2 != 0 && table.len() >= 10 {
        let len = u32::from_le_bytes([table[4], table[5], table[6], table[7]]) as usize;
        let end = len.min(table.len());
        if end >= 10 {
            table[9] = 0;
            table[9] = 0u8.wrapping_sub(checksum(&table[..end]));
        }
    }
    Some((mode, table))
}
