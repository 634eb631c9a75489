package keychain

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// How a value is laid out in the keychain.
//
// The main entry (the account itself) starts with a header
//
//	onerecord:1:<enc>:<count>:<length>:<sum>:
//
// followed by the first piece of the data; entries "<account>#1" ...
// "<account>#<count-1>" hold the rest. enc is "t" when the value is UTF-8
// text without NUL bytes (token sets are JSON) and is stored as is, split on
// rune boundaries so every piece is valid text; "b" when the value is base64
// encoded first, because some Secret Service providers keep secrets as text.
// length is the value's size in bytes and sum the first 8 bytes of its
// SHA-256 in hex: a missing, stale or foreign chunk is detected, never
// silently joined.
//
// Sizes: go-keyring hands Windows the string as is (limit 2560 bytes per
// credential) and on macOS base64-encodes it behind an 18-byte prefix into a
// `security -i` command line that must stay under 4096 bytes, and under
// about 3000 bytes for service, account and value together. An entry of
// DefaultChunkSize bytes becomes 18+4*1800/3 = 2418 bytes on macOS, leaving
// room for accounts up to MaxAccountLen.
const (
	// DefaultChunkSize is the default Options.ChunkSize.
	DefaultChunkSize = 1800
	// MinChunkSize is the smallest ChunkSize honoured (a header must fit).
	MinChunkSize = 64
	// MaxChunks bounds how many entries one value may use.
	MaxChunks = 256
	// MaxAccountLen is the longest account name accepted.
	MaxAccountLen = 200

	headerMagic = "onerecord:1:"
	chunkSep    = "#"
)

// chunkAccount is the entry name of chunk i (i >= 1) of account.
func chunkAccount(account string, i int) string {
	return account + chunkSep + strconv.Itoa(i)
}

func checksum(value []byte) string {
	s := sha256.Sum256(value)
	return hex.EncodeToString(s[:8])
}

// encodeEntries lays value out as entries of at most size bytes each; the
// first carries the header.
func encodeEntries(value []byte, size int) ([]string, error) {
	enc, data := "t", string(value)
	if !utf8.Valid(value) || bytes.IndexByte(value, 0) >= 0 {
		enc, data = "b", base64.StdEncoding.EncodeToString(value)
	}
	sum := checksum(value)
	// The header's length depends on the chunk count, which depends on the
	// header's length: try count widths until they agree.
	for width := 1; width <= 3; width++ {
		fixed := len(headerMagic) + len(enc) + 1 + width + 1 + len(strconv.Itoa(len(value))) + 1 + len(sum) + 1
		pieces := splitText(data, size-fixed, size)
		if len(pieces) > MaxChunks {
			return nil, fmt.Errorf("value of %d bytes needs %d entries of %d bytes, more than %d", len(value), len(pieces), size, MaxChunks)
		}
		if len(strconv.Itoa(len(pieces))) > width {
			continue
		}
		header := fmt.Sprintf("%s%s:%d:%d:%s:", headerMagic, enc, len(pieces), len(value), sum)
		pieces[0] = header + pieces[0]
		return pieces, nil
	}
	return nil, fmt.Errorf("value of %d bytes is too large for the keychain", len(value))
}

// splitText cuts s into a first piece of at most first bytes and further
// pieces of at most rest bytes, never inside a UTF-8 sequence. It always
// returns at least one (possibly empty) piece.
func splitText(s string, first, rest int) []string {
	pieces := []string{}
	limit := first
	for {
		if len(s) <= limit {
			return append(pieces, s)
		}
		end := limit
		for end > 0 && !utf8.RuneStart(s[end]) {
			end--
		}
		pieces = append(pieces, s[:end])
		s = s[end:]
		limit = rest
	}
}

// header is a parsed main entry.
type header struct {
	enc    string
	count  int
	length int
	sum    string
}

// parseMain splits the main entry into its header and first piece.
func parseMain(entry string) (header, string, error) {
	var h header
	rest, ok := strings.CutPrefix(entry, headerMagic)
	if !ok {
		return h, "", fmt.Errorf("not written by onerecord (no %q header)", strings.TrimSuffix(headerMagic, ":"))
	}
	f := strings.SplitN(rest, ":", 5)
	if len(f) != 5 {
		return h, "", fmt.Errorf("truncated header")
	}
	h.enc, h.sum = f[0], f[3]
	var err1, err2 error
	h.count, err1 = strconv.Atoi(f[1])
	h.length, err2 = strconv.Atoi(f[2])
	switch {
	case h.enc != "t" && h.enc != "b":
		return h, "", fmt.Errorf("unknown encoding %q", h.enc)
	case err1 != nil || h.count < 1 || h.count > MaxChunks:
		return h, "", fmt.Errorf("bad chunk count %q", f[1])
	case err2 != nil || h.length < 0:
		return h, "", fmt.Errorf("bad length %q", f[2])
	case len(h.sum) != 16:
		return h, "", fmt.Errorf("bad checksum field")
	}
	return h, f[4], nil
}

// decodeValue joins the pieces described by h and checks the result.
func decodeValue(h header, pieces []string) ([]byte, error) {
	data := strings.Join(pieces, "")
	var value []byte
	if h.enc == "b" {
		v, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("chunks do not decode: a chunk is stale or damaged")
		}
		value = v
	} else {
		value = []byte(data)
	}
	if len(value) != h.length || checksum(value) != h.sum {
		return nil, fmt.Errorf("checksum mismatch over %d chunks: a chunk is stale or damaged", h.count)
	}
	return value, nil
}
