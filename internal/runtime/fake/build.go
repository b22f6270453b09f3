package fake

import (
	"context"
	"fmt"
	"io"

	"github.com/tend-sh/tend/internal/spec"
)

const (
	MethodImageID          Method = "ImageID"
	MethodImageHealthcheck Method = "ImageHealthcheck"
	MethodBuild            Method = "Build"
)

func (f *Fake) ImageID(_ context.Context, ref string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodImageID, ref); err != nil {
		return "", err
	}
	return f.images[ref], nil
}

// ImageHealthcheck: an image added with AddImageHealthcheck has one.
func (f *Fake) ImageHealthcheck(_ context.Context, ref string) (has, found bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(MethodImageHealthcheck, ref); err != nil {
		return false, false, err
	}
	return f.imageChecks[ref], f.images[ref] != "", nil
}

// AddImageHealthcheck makes an image exist with a HEALTHCHECK of its own.
func (f *Fake) AddImageHealthcheck(ref, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = id
	f.imageChecks[ref] = true
}

// Build writes two lines of output, one before and one after the point where
// a failure injected with FailNext(MethodBuild, err) is returned, so a test
// sees output stream before the error. A build that succeeds tags a new image ID.
func (f *Fake) Build(_ context.Context, image string, b spec.Build, progress io.Writer) (string, error) {
	f.mu.Lock()
	failure := f.begin(MethodBuild, image, b.Context)
	f.mu.Unlock()
	// Written without the lock: progress may be a client that reads slowly.
	fmt.Fprintf(progress, "Step 1/2 : FROM scratch\n")
	if failure != nil {
		return "", failure
	}
	fmt.Fprintf(progress, "Step 2/2 : LABEL image=%s\n", image)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("sha256:fake%08d", f.seq)
	f.images[image] = id
	return id, nil
}

// AddImage makes an image exist, as one built or loaded outside tend.
func (f *Fake) AddImage(ref, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = id
}
