package pyudf

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docFiles are the Markdown files whose links must resolve.
func docFiles(t *testing.T) []string {
	files := []string{"README.md", "CHANGELOG.md"}
	more, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append(files, more...)
}

// pendingTargets are pages other work is adding; a link to one is checked
// once it exists, and skipped until then.
func pending(target string) bool {
	return strings.HasPrefix(target, "connect/") ||
		target == "docs/datastream.md" || target == "docs/setup.md"
}

var (
	linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	codeRE = regexp.MustCompile("`[^`]*`")
)

// markdown returns a file's lines outside fenced code blocks, with inline
// code removed, and the GitHub anchors of its headings.
func markdown(t *testing.T, path string) (lines []string, anchors map[string]bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	anchors = map[string]bool{}
	fenced := false
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		if strings.HasPrefix(line, "#") {
			anchors[anchor(strings.TrimLeft(line, "# "))] = true
		}
		lines = append(lines, codeRE.ReplaceAllString(line, ""))
	}
	return lines, anchors
}

// anchor is GitHub's anchor for a heading: lower case, spaces to hyphens,
// punctuation other than hyphens and underscores dropped.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.ReplaceAll(heading, "`", "")) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestDocLinks checks that every relative link in the README, the CHANGELOG
// and docs/ names a file that exists and, into a Markdown file, a heading
// that exists.
func TestDocLinks(t *testing.T) {
	checked := 0
	for _, file := range docFiles(t) {
		lines, own := markdown(t, file)
		for n, line := range lines {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				path, frag, _ := strings.Cut(target, "#")
				rel := filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(file), path)))
				if path == "" {
					rel = file
				}
				if _, err := os.Stat(rel); err != nil {
					if pending(rel) {
						continue
					}
					t.Errorf("%s:%d: link %q: %s does not exist", file, n+1, target, rel)
					continue
				}
				checked++
				if frag == "" || !strings.HasSuffix(rel, ".md") {
					continue
				}
				anchors := own
				if rel != file {
					_, anchors = markdown(t, rel)
				}
				if !anchors[frag] {
					t.Errorf("%s:%d: link %q: %s has no heading #%s", file, n+1, target, rel, frag)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("checked only %d links: is the parser broken?", checked)
	}
}

// TestReadmeExample checks that the README's Go example is Example_readme's
// body, line for line, so that it compiles and its output is checked.
func TestReadmeExample(t *testing.T) {
	src, err := os.ReadFile("engine/example_readme_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	in := false
	for _, line := range strings.Split(string(src), "\n") {
		switch {
		case strings.HasPrefix(line, "func Example_readme() {"):
			in = true
		case in && line == "}":
			in = false
		case in:
			body = append(body, strings.TrimPrefix(line, "\t"))
		}
	}
	readme, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer readme.Close()
	var block []string
	state := 0 // 0: before the marker, 1: before the fence, 2: in the block, 3: done
	for sc := bufio.NewScanner(readme); sc.Scan() && state < 3; {
		line := sc.Text()
		switch {
		case state == 0 && strings.Contains(line, "engine/example_readme_test.go"):
			state = 1
		case state == 1 && line == "```go":
			state = 2
		case state == 2 && line == "```":
			state = 3
		case state == 2:
			block = append(block, line)
		}
	}
	if len(body) == 0 || state != 3 {
		t.Fatalf("no Example_readme body (%d lines) or no README block after a line naming engine/example_readme_test.go (state %d)", len(body), state)
	}
	if got, want := strings.Join(block, "\n"), strings.Join(body, "\n"); got != want {
		t.Errorf("README's example differs from Example_readme:\nREADME:\n%s\nExample_readme:\n%s", got, want)
	}
}
