package demotest

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// BannerScript is the shell part of a banner, read as a POSIX shell (sh,
// bash or zsh) runs it line by line when it is pasted.
type BannerScript struct {
	// Vars are the variables the banner's assignment lines set.
	Vars map[string]string
	// Lines are the banner's shell lines, assignments and curl commands,
	// as printed and in order.
	Lines []string
	// Commands are the curl commands.
	Commands []BannerCommand
}

// BannerCommand is a curl command read from the banner with the status
// its comment line announces.
type BannerCommand struct {
	Title  string
	Status int
	// Command is the line as printed.
	Command string
	// Args are the words the shell hands curl for it (Args[0] is "curl"):
	// after expanding the variables set so far and removing the quotes.
	Args []string
}

// ErrCurl reports a shell line or curl command that ReadBanner, SplitShell
// or ParseCurl does not understand, or a shell would run differently.
var ErrCurl = errors.New("demotest: unsupported shell line or curl command")

// ReadBanner reads the shell lines of a banner in order, as a shell runs
// them: an assignment line (NAME=word, the name unquoted at the start of
// the line) sets a variable; a curl command is a line starting with
// "curl " right after a comment line "# <title>: HTTP <status>", split
// with the variables set so far. Other lines are prose.
func ReadBanner(banner string) (*BannerScript, error) {
	bs := &BannerScript{Vars: map[string]string{}}
	var last string
	sc := bufio.NewScanner(strings.NewReader(banner))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch name, value, ok := cutAssignment(line); {
		case ok:
			words, err := SplitShell(value, bs.Vars)
			switch {
			case err != nil:
				return nil, fmt.Errorf("assignment to %s: %w", name, err)
			case value != "" && (value[0] == ' ' || value[0] == '\t') || len(words) > 1:
				// NAME= cmd, NAME=a b: a command run with NAME in its
				// environment, not an assignment.
				return nil, fmt.Errorf("%w: %.60q is not a plain assignment", ErrCurl, line)
			case len(words) == 0:
				bs.Vars[name] = ""
			default:
				bs.Vars[name] = words[0]
			}
			bs.Lines = append(bs.Lines, line)
		case strings.HasPrefix(line, "curl "):
			title, status, ok := strings.Cut(strings.TrimPrefix(last, "# "), ": HTTP ")
			if !strings.HasPrefix(last, "# ") || !ok {
				return nil, fmt.Errorf("curl command without a status comment: %.60q", line)
			}
			code, err := strconv.Atoi(status)
			if err != nil {
				return nil, fmt.Errorf("bad status in %q", last)
			}
			args, err := SplitShell(line, bs.Vars)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", title, err)
			}
			bs.Commands = append(bs.Commands, BannerCommand{Title: title, Status: code, Command: line, Args: args})
			bs.Lines = append(bs.Lines, line)
		}
		last = line
	}
	return bs, sc.Err()
}

// cutAssignment splits a line that starts with NAME= (a shell name,
// unquoted) into the name and the rest.
func cutAssignment(line string) (name, rest string, ok bool) {
	i := strings.IndexByte(line, '=')
	if i <= 0 || !isName(line[:i]) {
		return "", "", false
	}
	return line[:i], line[i+1:], true
}

// isName reports whether s is a POSIX shell variable name.
func isName(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return s != ""
}

// CurlCall is what a curl command asks for.
type CurlCall struct {
	Request *http.Request
	// Include is -i: curl writes the status line and headers before the
	// body.
	Include bool
	// WriteOut is what -w makes curl write after the body (its \n, \r and
	// \t escapes applied).
	WriteOut string
}

// ParseCurl turns curl's arguments (Args of a BannerCommand, or the words
// of SplitShell) into the HTTP request curl would send (with curl's
// default "Accept: */*" unless -H sets Accept). It understands
// the options -s, -S, -sS, -i, -X METHOD, -H 'Name: value' and -w with
// plain text and \n, \r, \t; anything else is an error wrapping ErrCurl,
// so that a banner the test cannot replay fails the test.
func ParseCurl(args []string) (*CurlCall, error) {
	if len(args) == 0 || args[0] != "curl" {
		return nil, fmt.Errorf("%w: not a curl command", ErrCurl)
	}
	call := &CurlCall{}
	method := http.MethodGet
	header := http.Header{}
	var target string
	for i := 1; i < len(args); i++ {
		switch w := args[i]; w {
		case "-s", "-S", "-sS", "-Ss":
		case "-i", "-si", "-sSi":
			call.Include = true
		case "-X", "-H", "-w":
			if i+1 == len(args) {
				return nil, fmt.Errorf("%w: %s without a value", ErrCurl, w)
			}
			i++
			switch w {
			case "-X":
				method = args[i]
			case "-w":
				out, err := writeOut(args[i])
				if err != nil {
					return nil, err
				}
				call.WriteOut = out
			default:
				name, value, ok := strings.Cut(args[i], ":")
				if !ok || strings.TrimSpace(name) == "" {
					return nil, fmt.Errorf("%w: bad header %q", ErrCurl, args[i])
				}
				header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
			}
		default:
			if strings.HasPrefix(w, "-") || target != "" {
				return nil, fmt.Errorf("%w: unexpected word %q", ErrCurl, w)
			}
			target = w
		}
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: bad URL %q", ErrCurl, target)
	}
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCurl, err)
	}
	if header.Get("Accept") == "" {
		header.Set("Accept", "*/*")
	}
	req.Header = header
	call.Request = req
	return call, nil
}

// writeOut is what curl writes for -w format: text with the escapes \n,
// \r and \t. Variables (%), files (@) and other escapes are refused.
func writeOut(format string) (string, error) {
	if strings.HasPrefix(format, "@") || strings.Contains(format, "%") {
		return "", fmt.Errorf("%w: -w %q", ErrCurl, format)
	}
	var b strings.Builder
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		if i++; i == len(format) {
			return "", fmt.Errorf("%w: -w %q", ErrCurl, format)
		}
		switch format[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			return "", fmt.Errorf("%w: -w %q", ErrCurl, format)
		}
	}
	return b.String(), nil
}

// SplitShell splits a command line into words as a POSIX shell does,
// expanding the variables in vars: single quotes keep everything
// literally; double quotes keep everything but \" \\ \$ \` (the character
// after the backslash) and $NAME or ${NAME} (the variable's value, as one
// piece of the word); a backslash outside quotes escapes the next
// character. Whatever else a shell (sh, or bash or zsh, interactive or
// not) would interpret is refused with an error wrapping ErrCurl: $
// outside double quotes (field splitting), any other expansion, a
// variable not in vars, $NAME followed by [ or : (zsh subscripts and
// modifiers), ` ; | & < > ( ) * ? ~ # { } [ ] ^ outside quotes (# inside a
// word is literal), = starting a word outside quotes (zsh's =cmd), !
// anywhere outside single quotes (history expansion) and newlines.
func SplitShell(line string, vars map[string]string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%w: unterminated single quote", ErrCurl)
			}
			cur.WriteString(line[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case c == '"':
			end, err := doubleQuoted(line, i+1, vars, &cur)
			if err != nil {
				return nil, err
			}
			i = end
			inWord = true
		case c == '\\':
			if i+1 == len(line) || line[i+1] == '\n' {
				return nil, fmt.Errorf("%w: trailing backslash", ErrCurl)
			}
			i++
			cur.WriteByte(line[i])
			inWord = true
		case strings.IndexByte("$`;|&<>()*?~\n#{}[]!^", c) >= 0 && !(c == '#' && inWord):
			return nil, fmt.Errorf("%w: shell metacharacter %q", ErrCurl, c)
		case c == '=' && !inWord:
			return nil, fmt.Errorf("%w: = at the start of a word (zsh expands =cmd)", ErrCurl)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// doubleQuoted writes the text of a double-quoted string starting at
// line[i] to cur and returns the index of the closing quote.
func doubleQuoted(line string, i int, vars map[string]string, cur *strings.Builder) (int, error) {
	for ; i < len(line); i++ {
		switch c := line[i]; c {
		case '"':
			return i, nil
		case '\\':
			if i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
				i++
			}
			cur.WriteByte(line[i])
		case '$':
			name, end := "", i+1
			switch {
			case strings.HasPrefix(line[end:], "{"):
				j := strings.IndexByte(line[end:], '}')
				if j < 0 {
					return 0, fmt.Errorf("%w: unterminated ${", ErrCurl)
				}
				name, end = line[end+1:end+j], end+j+1
			default:
				for end < len(line) && isName(line[i+1:end+1]) {
					end++
				}
				name = line[i+1 : end]
				if end < len(line) && (line[end] == '[' || line[end] == ':') {
					// zsh subscripts ($x[1]) and modifies ($x:h) unbraced
					// expansions, even in double quotes.
					return 0, fmt.Errorf("%w: %q after $%s", ErrCurl, line[end], name)
				}
			}
			value, ok := vars[name]
			if !isName(name) || !ok {
				return 0, fmt.Errorf("%w: expansion of %q (only variables the banner sets)", ErrCurl, line[i:end])
			}
			cur.WriteString(value)
			i = end - 1
		case '`', '!', '\n':
			return 0, fmt.Errorf("%w: %q in double quotes", ErrCurl, c)
		default:
			cur.WriteByte(c)
		}
	}
	return 0, fmt.Errorf("%w: unterminated double quote", ErrCurl)
}
