package cluster

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tend-sh/tend/internal/errs"
	"github.com/tend-sh/tend/internal/nodes"
)

// A join token is "TEND1-<CA hash>-<secret>". The CA hash lets the joining
// host check, before it sends anything, that the manager it reached holds
// the cluster's CA; the secret tells the manager that the host may join, and
// as what: workers and managers have a secret each, kept in etcd, so any
// manager checks it and a rotation takes effect everywhere at once.
const tokenPrefix = "TEND1"

type token struct {
	caHash string
	secret string
}

func (t token) String() string { return tokenPrefix + "-" + t.caHash + "-" + t.secret }

func parseToken(s string) (token, error) {
	parts := strings.Split(strings.TrimSpace(s), "-")
	if len(parts) != 3 || parts[0] != tokenPrefix || len(parts[1]) != 64 || len(parts[2]) != 32 || !isHex(parts[1]) || !isHex(parts[2]) {
		return token{}, errs.E(errs.Invalid, "--token: not a tend join token (TEND1-<64 hex digits>-<32 hex digits>, from `tend cluster join-token` on a manager)")
	}
	return token{caHash: parts[1], secret: parts[2]}, nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func newSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// secrets are the join secrets of both roles, as stored in etcd.
type secrets struct {
	Worker  string `json:"worker"`
	Manager string `json:"manager"`
}

func newSecrets() secrets { return secrets{Worker: newSecret(), Manager: newSecret()} }

// role is the role a secret admits, or an error for a wrong one.
func (s secrets) role(secret string) (nodes.Role, error) {
	switch {
	case subtle.ConstantTimeCompare([]byte(secret), []byte(s.Manager)) == 1:
		return nodes.Manager, nil
	case subtle.ConstantTimeCompare([]byte(secret), []byte(s.Worker)) == 1:
		return nodes.Worker, nil
	}
	return "", errs.E(errs.Unauthenticated, "the join token is not valid for this cluster (rotated, or of another cluster)")
}

func (s secrets) of(r nodes.Role) (string, error) {
	switch r {
	case nodes.Manager:
		return s.Manager, nil
	case nodes.Worker:
		return s.Worker, nil
	}
	return "", fmt.Errorf("no role %q", r)
}
