package wrenntest

import (
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"regexp"
	"strings"
)

var (
	capsuleIDPattern = regexp.MustCompile(`^cl-[0-9a-z]{25}$`)
	apiKeyPattern    = regexp.MustCompile(`^wrn_[0-9a-f]{32}$`)
	namePattern      = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)
	maxUUID          = new(big.Int).Lsh(big.NewInt(1), 128)
)

// validCapsuleID reports whether id is well formed: "cl-" and 25 lowercase
// base36 digits encoding a number below 2^128 (a UUID). The real server
// crashes on larger values; this server rejects them as malformed.
func validCapsuleID(id string) bool {
	if !capsuleIDPattern.MatchString(id) {
		return false
	}
	n, ok := new(big.Int).SetString(id[3:], 36)
	return ok && n.Cmp(maxUUID) < 0
}

// newCapsuleID returns a random UUIDv4 encoded as a capsule id.
func newCapsuleID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	s := new(big.Int).SetBytes(b[:]).Text(36)
	return "cl-" + strings.Repeat("0", 25-len(s)) + s
}

// GenerateAPIKey returns a fresh random API key in the real server's
// format: "wrn_" and 32 lowercase hex digits.
func GenerateAPIKey() string { return "wrn_" + randomHex(16) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
