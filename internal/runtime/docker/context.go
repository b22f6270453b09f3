package docker

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tend-sh/tend/internal/spec"
)

// buildContext is what the engine is sent for a build: the files of the context
// directory that .dockerignore lets through, and the Dockerfile.
type buildContext struct {
	dir        string
	ignore     *ignorer
	dockerfile string // the Dockerfile's path in the archive, slash-separated: the build's dockerfile option
	// extra is the Dockerfile's content when it is no file of dir (it lies outside,
	// or is inline); the archive carries it as dockerfile. Nil otherwise.
	extra []byte
}

// defaultIgnore applies when the context has no .dockerignore: the docker CLI
// would send a repository's history along, which no build needs.
var defaultIgnore = []string{".git"}

// newBuildContext reads what a build of b needs besides the context's files:
// .dockerignore and the Dockerfile's place. Its errors are the user's to fix.
func newBuildContext(b spec.Build) (*buildContext, error) {
	fi, err := os.Stat(b.Context)
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("context %s is not a directory", b.Context)
	}
	bc := &buildContext{dir: b.Context}
	if bc.ignore, err = readIgnore(b.Context); err != nil {
		return nil, err
	}
	if b.DockerfileInline != "" {
		bc.setExtra([]byte(b.DockerfileInline))
		return bc, nil
	}
	file := b.Dockerfile
	if !filepath.IsAbs(file) {
		file = filepath.Join(b.Context, file)
	}
	rel, err := filepath.Rel(b.Context, file)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		fi, err := os.Stat(file)
		if err != nil {
			return nil, fmt.Errorf("dockerfile: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("dockerfile %s is not a file", file)
		}
		bc.dockerfile = filepath.ToSlash(rel)
		return bc, nil
	}
	content, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("dockerfile: %w", err)
	}
	bc.setExtra(content)
	return bc, nil
}

// setExtra carries a Dockerfile from outside the context under a name made from
// its content, as the docker CLI does (stable, so the engine's cache still hits).
func (bc *buildContext) setExtra(content []byte) {
	sum := sha256.Sum256(content)
	bc.extra = content
	bc.dockerfile = ".tend-dockerfile-" + hex.EncodeToString(sum[:6])
}

func readIgnore(dir string) (*ignorer, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return parseDockerignore(strings.NewReader(strings.Join(defaultIgnore, "\n")))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ig, err := parseDockerignore(f)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	return ig, nil
}

// keep reports whether the file at rel goes into the archive. The Dockerfile and
// .dockerignore always do, even when ignored: the engine needs them.
func (bc *buildContext) keep(rel string) bool {
	return rel == bc.dockerfile || rel == ".dockerignore" || !bc.ignore.excludes(rel)
}

// descend reports whether an ignored directory must still be walked: an
// exception may let a file in it back in, or the Dockerfile lies in it.
func (bc *buildContext) descend(rel string) bool {
	return bc.ignore.exceptions || strings.HasPrefix(bc.dockerfile, rel+"/")
}

// write writes the context as a tar archive: regular files, directories and
// symbolic links, owned by root as the docker CLI sends them.
func (bc *buildContext) write(w io.Writer) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(bc.dir, func(file string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(bc.dir, file)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !bc.keep(rel) {
			if d.IsDir() && !bc.descend(rel) {
				return filepath.SkipDir
			}
			return nil
		}
		return addFile(tw, file, rel, d)
	})
	if err != nil {
		return err
	}
	if bc.extra != nil {
		hdr := &tar.Header{Name: bc.dockerfile, Mode: 0o644, Size: int64(len(bc.extra)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(bc.extra); err != nil {
			return err
		}
	}
	return tw.Close()
}

// addFile writes one entry; sockets, devices and pipes are left out.
func addFile(tw *tar.Writer, file, name string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return err
	}
	link := ""
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(file); err != nil {
			return err
		}
	case fi.IsDir(), fi.Mode().IsRegular():
	default:
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyN(tw, f, hdr.Size) // a file that grows meanwhile is sent as it was
	return err
}
