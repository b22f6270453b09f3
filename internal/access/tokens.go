package access

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/tend-sh/tend/internal/errs"
)

// Role is what a token allows.
type Role string

const (
	Read  Role = "read"  // GET requests: status, journal, metrics, the API document
	Admin Role = "admin" // every request of the TCP listener, actions included
)

// ParseRole checks a role named on the command line or in a request.
func ParseRole(s string) (Role, error) {
	switch Role(s) {
	case Read, Admin:
		return Role(s), nil
	}
	return "", errs.E(errs.Invalid, "role must be read or admin (got %q)", s)
}

// Token is what tend keeps of a token: never its secret.
type Token struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
	Hash    string    `json:"-"` // hex SHA-256 of the secret; in the file only (see file below)
}

// secretPrefix marks tend's tokens, so a leaked one is recognisable in a scan.
const secretPrefix = "tend_"

// Tokens is the set of tokens, kept in one file. It is safe for concurrent use.
type Tokens struct {
	path string
	mu   sync.Mutex
	list []Token
}

// fileToken is a Token as the file holds it, with its hash.
type fileToken struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Created time.Time `json:"created"`
	Hash    string    `json:"sha256"`
}

// OpenTokens reads the tokens file at path; a missing file is no tokens yet.
func OpenTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return t, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	var ft []fileToken
	if err := json.Unmarshal(b, &ft); err != nil {
		return nil, errs.E(errs.Invalid, "tokens: %s is not a tokens file: %v", path, err)
	}
	for _, f := range ft {
		t.list = append(t.list, Token{ID: f.ID, Name: f.Name, Role: f.Role, Created: f.Created, Hash: f.Hash})
	}
	return t, nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Create makes a token of role and returns its secret, the only time it is
// seen. An empty name gets one from the token's id.
func (t *Tokens) Create(name string, role Role, now time.Time) (Token, string, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return Token{}, "", err
	}
	var raw [32]byte
	var id [4]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Token{}, "", err
	}
	if _, err := rand.Read(id[:]); err != nil {
		return Token{}, "", err
	}
	tok := Token{ID: hex.EncodeToString(id[:]), Name: name, Role: role, Created: now.UTC().Truncate(time.Second)}
	if tok.Name == "" {
		tok.Name = "token-" + tok.ID
	}
	if !validName.MatchString(tok.Name) {
		return Token{}, "", errs.E(errs.Invalid, "token name %q: letters, digits, '.', '_' and '-', at most 64", tok.Name)
	}
	secret := secretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	tok.Hash = hex.EncodeToString(sum[:])

	t.mu.Lock()
	defer t.mu.Unlock()
	if slices.ContainsFunc(t.list, func(o Token) bool { return o.Name == tok.Name }) {
		return Token{}, "", errs.E(errs.Conflict, "a token named %q exists (tend token rm %s first)", tok.Name, tok.Name)
	}
	if err := t.save(append(slices.Clone(t.list), tok)); err != nil {
		return Token{}, "", err
	}
	t.list = append(t.list, tok)
	return tok, secret, nil
}

// List returns the tokens, oldest first.
func (t *Tokens) List() []Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.list)
}

// Remove deletes the token with this name or id; requests carrying it fail from now on.
func (t *Tokens) Remove(nameOrID string) (Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.IndexFunc(t.list, func(o Token) bool { return o.Name == nameOrID || o.ID == nameOrID })
	if i < 0 {
		return Token{}, errs.E(errs.NotFound, "no token named %q", nameOrID)
	}
	gone := t.list[i]
	kept := slices.Delete(slices.Clone(t.list), i, i+1)
	if err := t.save(kept); err != nil {
		return Token{}, err
	}
	t.list = kept
	return gone, nil
}

// Check finds the token whose secret this is. Every stored hash is compared,
// each in constant time, so the answer's timing tells nothing of which
// token, or how much of one, matched.
// A nil Tokens has none.
func (t *Tokens) Check(secret string) (Token, bool) {
	if t == nil || secret == "" {
		return Token{}, false
	}
	sum := sha256.Sum256([]byte(secret))
	t.mu.Lock()
	defer t.mu.Unlock()
	found := -1
	for i, tok := range t.list {
		want, err := hex.DecodeString(tok.Hash)
		if err != nil || len(want) != len(sum) {
			continue
		}
		if subtle.ConstantTimeCompare(sum[:], want) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Token{}, false
	}
	return t.list[found], true
}

// save writes list to the file, whole or not at all.
func (t *Tokens) save(list []Token) error {
	ft := make([]fileToken, len(list))
	for i, tok := range list {
		ft[i] = fileToken{ID: tok.ID, Name: tok.Name, Role: tok.Role, Created: tok.Created, Hash: tok.Hash}
	}
	b, err := json.MarshalIndent(ft, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(t.path), ".tokens-*")
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	if err := os.Rename(tmp.Name(), t.path); err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	return nil
}
