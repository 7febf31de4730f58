// witnesscheck verifies Relay's witness notes and proofs with Go's golang.org/x/mod/sumdb/note
// and .../sumdb/tlog: code nobody at Relay wrote. It reads a JSON file of cases and prints one
// line per case: "ok" or "fail: <reason>". Used by node/tests/witness.rs.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type Case struct {
	Kind    string   `json:"kind"`
	Proof   string   `json:"proof"`
	OldNote string   `json:"old_note"`
	NewNote string   `json:"new_note"`
	Hashes  []string `json:"hashes"`
}

type Input struct {
	Keys  []string `json:"keys"`
	Cases []Case   `json:"cases"`
}

type checkpoint struct {
	origin string
	size   int64
	root   tlog.Hash
}

func openCheckpoint(msg string, keys note.Verifiers) (checkpoint, error) {
	n, err := note.Open([]byte(msg), keys)
	if err != nil {
		return checkpoint{}, err
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 {
		return checkpoint{}, errors.New("short checkpoint")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return checkpoint{}, err
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return checkpoint{}, err
	}
	if n.Sigs[0].Name != lines[0] {
		return checkpoint{}, errors.New("origin is not the key name")
	}
	return checkpoint{lines[0], size, root}, nil
}

func inclusion(text string, keys note.Verifiers) error {
	head, cp, ok := strings.Cut(text, "\n\n")
	if !ok {
		return errors.New("no checkpoint")
	}
	lines := strings.Split(head, "\n")
	if lines[0] != "c2sp.org/tlog-proof@v1" {
		return errors.New("not a tlog-proof")
	}
	lines = lines[1:]
	if !strings.HasPrefix(lines[0], "extra ") {
		return errors.New("no record")
	}
	record, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(lines[0], "extra "))
	if err != nil {
		return err
	}
	index, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "index "), 10, 64)
	if err != nil {
		return err
	}
	var proof tlog.RecordProof
	for _, l := range lines[2:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			return err
		}
		proof = append(proof, h)
	}
	c, err := openCheckpoint(cp, keys)
	if err != nil {
		return err
	}
	return tlog.CheckRecord(proof, c.size, c.root, index, tlog.RecordHash(record))
}

func consistency(cs Case, keys note.Verifiers) error {
	a, err := openCheckpoint(cs.OldNote, keys)
	if err != nil {
		return err
	}
	b, err := openCheckpoint(cs.NewNote, keys)
	if err != nil {
		return err
	}
	var proof tlog.TreeProof
	for _, l := range cs.Hashes {
		h, err := tlog.ParseHash(l)
		if err != nil {
			return err
		}
		proof = append(proof, h)
	}
	return tlog.CheckTree(proof, b.size, b.root, a.size, a.root)
}

func main() {
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var in Input
	if err := json.Unmarshal(data, &in); err != nil {
		panic(err)
	}
	var vs []note.Verifier
	for _, k := range in.Keys {
		v, err := note.NewVerifier(k)
		if err != nil {
			panic(err)
		}
		vs = append(vs, v)
	}
	keys := note.VerifierList(vs...)
	for _, cs := range in.Cases {
		var err error
		switch cs.Kind {
		case "inclusion":
			err = inclusion(cs.Proof, keys)
		case "consistency":
			err = consistency(cs, keys)
		default:
			err = errors.New("unknown kind")
		}
		if err != nil {
			fmt.Printf("fail: %v\n", err)
		} else {
			fmt.Println("ok")
		}
	}
}
