// gomatch: Go's path.Match for pykes's glob fuzzing (tests/fuzz/test_fuzz_globs.py).
// Reads lines "<pattern>\t<name>" (both JSON strings) from stdin and answers one line
// each: "1" (match), "0" (no match) or "E" (path.ErrBadPattern).
package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path"
	"strings"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		var pattern, name string
		fields := strings.SplitN(in.Text(), "\t", 2)
		if len(fields) != 2 || json.Unmarshal([]byte(fields[0]), &pattern) != nil ||
			json.Unmarshal([]byte(fields[1]), &name) != nil {
			os.Exit(2)
		}
		matched, err := path.Match(pattern, name)
		switch {
		case err != nil:
			out.WriteString("E\n")
		case matched:
			out.WriteString("1\n")
		default:
			out.WriteString("0\n")
		}
		out.Flush()
	}
}
