package store

import (
	"encoding/binary"
	"os"
	"slices"
)

// scanJournal looks for journal entries in every page of the file, not
// only those its tree still reaches: when a torn file has lost the pages of
// the last commits (bbolt copies a page on write, so the newest tree is
// often at the end), the pages of earlier commits still hold most entries.
// An entry never changes once written, so any copy of it is the entry.
// It adds those c does not hold, and moves c.seq up to the newest found.
func scanJournal(c *contents, path string, maxEntries int) int {
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2*4096 {
		return 0
	}
	pageSize := 4096
	if ps := int(binary.LittleEndian.Uint32(b[16+8:])); ps >= 512 && ps <= 1<<20 && ps&(ps-1) == 0 {
		pageSize = ps
	}
	name := string(bucketJournal)
	have := map[uint64]bool{}
	for _, seq := range c.seqs {
		have[seq] = true
	}
	var found []record
	for off := 2 * pageSize; off+16 <= len(b); off += pageSize {
		found = leafEntries(b, off, pageSize, have, found)
	}
	if len(found) == 0 {
		return 0
	}
	for _, r := range found {
		c.seq = max(c.seq, binary.BigEndian.Uint64(r.k))
	}
	// Entries past retention were trimmed: pages of long ago hold them.
	var oldest uint64
	if c.seq > uint64(maxEntries) {
		oldest = c.seq - uint64(maxEntries)
	}
	found = slices.DeleteFunc(found, func(r record) bool { return binary.BigEndian.Uint64(r.k) <= oldest })
	for _, r := range found {
		c.seqs = append(c.seqs, binary.BigEndian.Uint64(r.k))
	}
	if c.keep {
		c.buckets[name] = append(c.buckets[name], found...) // journalLosses sorts them
	}
	return len(found)
}

// leafEntries appends the journal entries of the leaf page at off, if it is
// one, that have does not hold (and adds them to have).
func leafEntries(b []byte, off, pageSize int, have map[uint64]bool, found []record) []record {
	const leaf, elemSize = 0x02, 16
	flags := binary.LittleEndian.Uint16(b[off+8:])
	count := int(binary.LittleEndian.Uint16(b[off+10:]))
	end := min(len(b), off+(int(binary.LittleEndian.Uint32(b[off+12:]))+1)*pageSize)
	if flags != leaf || off+16+count*elemSize > end {
		return found
	}
	for i := range count {
		e := off + 16 + i*elemSize
		eflags := binary.LittleEndian.Uint32(b[e:])
		pos := int(binary.LittleEndian.Uint32(b[e+4:]))
		ksize := int(binary.LittleEndian.Uint32(b[e+8:]))
		vsize := int(binary.LittleEndian.Uint32(b[e+12:]))
		if eflags != 0 || ksize != 8 || pos < 0 || vsize < 0 || e+pos+ksize+vsize > end || e+pos+ksize+vsize < e {
			continue
		}
		k := b[e+pos : e+pos+ksize]
		v := b[e+pos+ksize : e+pos+ksize+vsize]
		seq := binary.BigEndian.Uint64(k)
		if have[seq] || checkRecord(string(bucketJournal), k, v) != nil {
			continue
		}
		have[seq] = true
		found = append(found, record{clone(k), clone(v)})
	}
	return found
}
