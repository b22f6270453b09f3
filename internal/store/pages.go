package store

import (
	"encoding/binary"
	"fmt"
	"os"
)

// bbolt walks its pages through unsafe pointers: a damaged page count,
// element offset or child page id makes it read past the end of the file
// (a fault) or anywhere in memory (seen in a damage test of 2026-12-07:
// "fatal error: found pointer to free object", which no recover catches).
// So before bbolt walks a tree, checkTree walks it in plain Go over the
// file's bytes, with every offset bounded, and bbolt is let walk only the
// buckets whose pages all passed.

// bbolt's on-disk layout (go.etcd.io/bbolt internal/common): a page is a
// 16-byte header (id u64, flags u16, count u16, overflow u32) and count
// elements of 16 bytes whose pos is relative to the element itself.
const (
	pageHeader      = 16
	elementSize     = 16
	bucketHeader    = 16 // a bucket's value: root page id, sequence
	branchPage      = 0x01
	leafPage        = 0x02
	bucketLeaf      = 0x01 // a leaf element that is a bucket
	maxTreeDepth    = 64
	metaOffsetRoot  = pageHeader + 16
	metaOffsetFree  = pageHeader + 32
	freelistPage    = 0x10
	noFreelist      = ^uint64(0)
	metaOffsetHWM   = pageHeader + 40
	metaOffsetTxid  = pageHeader + 48
	metaOffsetPSize = pageHeader + 8
)

// treeCheck walks one commit's page tree.
type treeCheck struct {
	file     []byte
	pageSize uint64
	hwm      uint64 // the pages the commit says the file has
	seen     map[uint64]bool
}

// soundness is what checkTree found: the buckets whose trees bbolt must not
// walk, with why, or that the root tree itself is unsound (then none).
type soundness struct {
	rootBad  string
	unsound  map[string]string
	problems []string
}

// checkTree checks the tree of the commit bbolt would open: the meta page
// with the higher transaction id of the two whose checksums hold.
func checkTree(path string) soundness {
	s := soundness{unsound: map[string]string{}}
	file, err := os.ReadFile(path)
	if err != nil {
		s.rootBad = err.Error()
		return s
	}
	meta, pageSize := chooseMeta(file)
	if meta == nil {
		s.rootBad = "no meta page is valid"
		return s
	}
	t := &treeCheck{file: file, pageSize: pageSize, hwm: binary.LittleEndian.Uint64(meta[metaOffsetHWM:]), seen: map[uint64]bool{}}
	root := binary.LittleEndian.Uint64(meta[metaOffsetRoot:])
	var top [][2][]byte // the root tree's leaf elements: name, value
	if err := t.walk(root, 0, func(k, v []byte, flags uint32) error {
		if flags&bucketLeaf == 0 {
			return fmt.Errorf("the root holds a record %q where a bucket belongs", k)
		}
		top = append(top, [2][]byte{k, v})
		return nil
	}); err != nil {
		s.rootBad = err.Error()
		s.problems = append(s.problems, "the tree of buckets cannot be walked: "+err.Error())
		return s
	}
	if err := t.freelist(binary.LittleEndian.Uint64(meta[metaOffsetFree:])); err != nil {
		// bbolt reads it when the store is opened for writing, through unsafe pointers too.
		s.problems = append(s.problems, "the list of free pages is damaged: "+err.Error())
	}
	for _, kv := range top {
		if err := t.bucket(kv[1], 1); err != nil {
			s.unsound[string(kv[0])] = err.Error()
			s.problems = append(s.problems, fmt.Sprintf("bucket %s cannot be walked: %v", kv[0], err))
		}
	}
	return s
}

// chooseMeta returns the meta page (from its page header on) bbolt would
// use and the file's page size, or nil when neither meta page is valid.
func chooseMeta(file []byte) ([]byte, uint64) {
	pageSize := uint64(os.Getpagesize())
	if len(file) >= pageHeader+64 && metaValid(file[:pageHeader+64]) {
		pageSize = uint64(binary.LittleEndian.Uint32(file[metaOffsetPSize:]))
	}
	var best []byte
	for i := range uint64(2) {
		off := i * pageSize
		if off+pageHeader+64 > uint64(len(file)) {
			continue
		}
		m := file[off : off+pageHeader+64]
		if !metaValid(m) {
			continue
		}
		if best == nil || binary.LittleEndian.Uint64(m[metaOffsetTxid:]) > binary.LittleEndian.Uint64(best[metaOffsetTxid:]) {
			best = m
		}
	}
	if ps := pageSize; ps < 512 || ps > 1<<20 || ps&(ps-1) != 0 {
		return nil, 0
	}
	return best, pageSize
}

// bucket checks a bucket's value and the tree it roots: an inline bucket's
// page lies in the value itself.
func (t *treeCheck) bucket(v []byte, depth int) error {
	if len(v) < bucketHeader {
		return fmt.Errorf("a bucket header of %d bytes", len(v))
	}
	visit := func(k, v []byte, flags uint32) error {
		if flags&bucketLeaf != 0 {
			return t.bucket(v, depth+1)
		}
		return nil
	}
	if root := binary.LittleEndian.Uint64(v); root != 0 {
		return t.walk(root, depth, visit)
	}
	return t.elements(v[bucketHeader:], leafPage, depth, visit)
}

// walk checks page id and the pages under it, calling leaf for every leaf element.
func (t *treeCheck) walk(id uint64, depth int, leaf func(k, v []byte, flags uint32) error) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("the tree is deeper than %d pages", maxTreeDepth)
	}
	if id < 2 || id >= t.hwm {
		return fmt.Errorf("page %d is outside the commit's %d pages", id, t.hwm)
	}
	if t.seen[id] {
		return fmt.Errorf("page %d is reached twice", id)
	}
	t.seen[id] = true
	off := id * t.pageSize
	if off+pageHeader > uint64(len(t.file)) {
		return fmt.Errorf("page %d is past the end of the file (torn)", id)
	}
	h := t.file[off:]
	if got := binary.LittleEndian.Uint64(h); got != id {
		return fmt.Errorf("page %d says it is page %d", id, got)
	}
	overflow := uint64(binary.LittleEndian.Uint32(h[12:]))
	span := (1 + overflow) * t.pageSize
	if id+overflow >= t.hwm || off+span > uint64(len(t.file)) {
		return fmt.Errorf("page %d (%d pages long) is past the end of the file (torn)", id, 1+overflow)
	}
	page := t.file[off : off+span]
	flags := binary.LittleEndian.Uint16(page[8:])
	if flags != branchPage && flags != leafPage {
		return fmt.Errorf("page %d has flags %#x where a branch or leaf page belongs", id, flags)
	}
	return t.elements(page, flags, depth, leaf)
}

// elements checks the elements of one page (its header first) and what they point to.
func (t *treeCheck) elements(page []byte, flags uint16, depth int, leaf func(k, v []byte, flags uint32) error) error {
	if len(page) < pageHeader {
		return fmt.Errorf("a page of %d bytes", len(page))
	}
	if got := binary.LittleEndian.Uint16(page[8:]); got != flags {
		return fmt.Errorf("page flags %#x where %#x belong", got, flags)
	}
	count := uint64(binary.LittleEndian.Uint16(page[10:]))
	if pageHeader+count*elementSize > uint64(len(page)) {
		return fmt.Errorf("%d elements do not fit a page of %d bytes", count, len(page))
	}
	for i := range count {
		at := pageHeader + i*elementSize
		e := page[at : at+elementSize]
		if flags == branchPage {
			pos, ksize := uint64(binary.LittleEndian.Uint32(e)), uint64(binary.LittleEndian.Uint32(e[4:]))
			if at+pos+ksize > uint64(len(page)) {
				return fmt.Errorf("branch element %d reaches past its page", i)
			}
			if err := t.walk(binary.LittleEndian.Uint64(e[8:]), depth+1, leaf); err != nil {
				return err
			}
			continue
		}
		eflags := binary.LittleEndian.Uint32(e)
		pos, ksize, vsize := uint64(binary.LittleEndian.Uint32(e[4:])), uint64(binary.LittleEndian.Uint32(e[8:])), uint64(binary.LittleEndian.Uint32(e[12:]))
		if at+pos+ksize+vsize > uint64(len(page)) {
			return fmt.Errorf("leaf element %d reaches past its page", i)
		}
		k := page[at+pos : at+pos+ksize]
		if err := leaf(k, page[at+pos+ksize:at+pos+ksize+vsize], eflags); err != nil {
			return err
		}
	}
	return nil
}

// freelist checks the free-page list's page: its ids must fit in it.
func (t *treeCheck) freelist(id uint64) error {
	if id == noFreelist {
		return nil
	}
	if id < 2 || id >= t.hwm || (id+1)*t.pageSize > uint64(len(t.file)) {
		return fmt.Errorf("page %d is outside the file", id)
	}
	h := t.file[id*t.pageSize:]
	if got := binary.LittleEndian.Uint64(h); got != id {
		return fmt.Errorf("page %d says it is page %d", id, got)
	}
	if flags := binary.LittleEndian.Uint16(h[8:]); flags != freelistPage {
		return fmt.Errorf("page %d has flags %#x", id, flags)
	}
	overflow := uint64(binary.LittleEndian.Uint32(h[12:]))
	span := (1 + overflow) * t.pageSize
	if id+overflow >= t.hwm || id*t.pageSize+span > uint64(len(t.file)) {
		return fmt.Errorf("page %d (%d pages long) is past the end of the file", id, 1+overflow)
	}
	count, first := uint64(binary.LittleEndian.Uint16(h[10:])), uint64(0)
	if count == 0xFFFF { // the real count is the first id's place
		count, first = binary.LittleEndian.Uint64(h[pageHeader:]), 1
	}
	if count > span/8 || pageHeader+(first+count)*8 > span {
		return fmt.Errorf("%d free page ids do not fit %d bytes", count, span)
	}
	return nil
}
