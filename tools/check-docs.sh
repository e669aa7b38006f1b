#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Checks that the docs stand on their own (issue 11):
#   - every relative markdown link [text](path) or [text](path#anchor) in a
#     *.md file names an existing file (relative to the .md file), and its
#     anchor, if any, a heading of the target (GitHub's anchor rules);
#   - every citation of a doc section, <doc>.md or docs/<doc>.md followed by
#     the heading in double quotes, names an existing level-2 or level-3
#     heading of docs/<doc>.md (or <doc>.md at the root) exactly;
#   - in code comments, every doc named is a file of the repository, and a
#     citation of the facts file always names a heading;
#   - nothing points at the read-only notes outside the repository.
# Scans every *.md file and the comments of harness/, fuzz/ and
# guest-modules/ (C and C++) and of images/, tools/, bench/, suites/,
# kernel-configs/ and .ci/ (shell, YAML, configs).
#
#   tools/check-docs.sh
#
# Prints "file:line: what is wrong" for each failure and exits 1, or prints
# "check-docs: N links, M citations ok" and exits 0. Needs bash, git, grep
# and awk (mawk will do): no python.
set -euo pipefail

cd "$(git rev-parse --show-toplevel)"

# Tracked files, plus new ones not yet added (in a clone: the same list).
mapfile -t all_files < <(git ls-files --cached --others --exclude-standard | sort -u)

md_files=()
c_files=()
hash_files=()
for f in "${all_files[@]}"; do
	[ -f "$f" ] || continue
	case "$f" in
	*.md) md_files+=("$f") ;;
	harness/*.cc | harness/*.h | fuzz/*.cc | fuzz/*.h | guest-modules/*.c | guest-modules/*.h)
		c_files+=("$f") ;;
	images/* | tools/* | bench/* | suites/* | kernel-configs/* | .ci/* | guest-modules/*)
		# text files only
		if grep -Iq . "$f" 2>/dev/null; then hash_files+=("$f"); fi ;;
	esac
done

failures=0
links=0
citations=0

fail() {
	printf '%s:%s: %s\n' "$1" "$2" "$3"
	failures=$((failures + 1))
}

# Headings of a markdown file, outside fenced code blocks: "level<TAB>text".
headings() {
	awk '
		/^[ \t]*(```|~~~)/ { fence = !fence; next }
		fence { next }
		/^#+[ \t]/ {
			h = $0
			match(h, /^#+/)
			level = RLENGTH
			sub(/^#+[ \t]+/, "", h)
			sub(/[ \t]+#+[ \t]*$/, "", h)
			sub(/[ \t]+$/, "", h)
			print level "\t" h
		}
	' "$1"
}

# GitHub-style anchors of a markdown file, one a line: lower case, every
# character but letters, digits, space, "-" and "_" dropped, spaces turned
# into "-", "-1", "-2"... added to repeats. Non-ASCII letters are dropped
# too (GitHub keeps them): keep headings that are linked to ASCII.
anchors() {
	headings "$1" | awk -F '\t' '{
		a = tolower($2)
		gsub(/[^a-z0-9 _-]/, "", a)
		gsub(/ /, "-", a)
		if (a in seen) { print a "-" seen[a]; seen[a]++ }
		else { print a; seen[a] = 1 }
	}'
}

declare -A anchor_cache=()
has_anchor() { # file anchor
	if [ -z "${anchor_cache[$1]+set}" ]; then
		anchor_cache[$1]=$(anchors "$1")
	fi
	grep -Fxq -- "$2" <<<"${anchor_cache[$1]}"
}

declare -A heading_cache=()
has_heading() { # file heading (levels 2 and 3)
	if [ -z "${heading_cache[$1]+set}" ]; then
		heading_cache[$1]=$(headings "$1" | awk -F '\t' '$1 == 2 || $1 == 3 { print $2 }')
	fi
	grep -Fxq -- "$2" <<<"${heading_cache[$1]}"
}

# 1. Markdown links: "file<TAB>line<TAB>target", outside fences and code spans.
check_links() {
	[ ${#md_files[@]} -gt 0 ] || return 0
	local f line target path anchor resolved
	while IFS=$'\t' read -r f line target; do
		case "$target" in
		[a-zA-Z]*:*) continue ;; # https:, mailto:...
		esac
		links=$((links + 1))
		path=${target%%#*}
		anchor=
		case "$target" in *'#'*) anchor=${target#*#} ;; esac
		if [ -z "$path" ]; then
			resolved=$f
		elif [ "${path#/}" != "$path" ]; then
			fail "$f" "$line" "absolute link $target: use a path relative to $f"
			continue
		else
			resolved=$(dirname "$f")/$path
			resolved=${resolved#./}
		fi
		if [ ! -e "$resolved" ]; then
			fail "$f" "$line" "link $target: no such file $resolved"
			continue
		fi
		if [ -n "$anchor" ]; then
			case "$resolved" in
			*.md) has_anchor "$resolved" "$anchor" ||
				fail "$f" "$line" "link $target: no heading with anchor #$anchor in $resolved" ;;
			*) fail "$f" "$line" "link $target: an anchor into a file that is not markdown" ;;
			esac
		fi
	done < <(awk '
		FNR == 1 { fence = 0 }
		/^[ \t]*(```|~~~)/ { fence = !fence; next }
		fence { next }
		{
			s = $0
			gsub(/`[^`]*`/, "", s)
			while (match(s, /\]\([^) \t]+\)/)) {
				print FILENAME "\t" FNR "\t" substr(s, RSTART + 2, RLENGTH - 3)
				s = substr(s, RSTART + RLENGTH)
			}
		}
	' "${md_files[@]}")
}

# Text to scan: "file<TAB>line<TAB>kind<TAB>text"; kind is md (a whole line
# of a markdown file) or comment (the comment part of a source line).
scan_text() {
	if [ ${#md_files[@]} -gt 0 ]; then
		awk '{ print FILENAME "\t" FNR "\tmd\t" $0 }' "${md_files[@]}"
	fi
	if [ ${#c_files[@]} -gt 0 ]; then
		# "//" to the end of the line, "/*" to "*/", across lines.
		awk '
			FNR == 1 { inblock = 0 }
			{
				t = ""
				if (inblock) {
					t = $0
					if (index($0, "*/")) inblock = 0
				} else if ((i = index($0, "//")) > 0) {
					t = substr($0, i + 2)
				} else if ((i = index($0, "/*")) > 0) {
					t = substr($0, i + 2)
					if (!index(t, "*/")) inblock = 1
				}
				if (t != "") print FILENAME "\t" FNR "\tcomment\t" t
			}
		' "${c_files[@]}"
	fi
	if [ ${#hash_files[@]} -gt 0 ]; then
		# "#" at the start of a line or after a blank, to the end of the line.
		awk '
			match($0, /(^|[ \t])#/) {
				print FILENAME "\t" FNR "\tcomment\t" substr($0, RSTART + RLENGTH)
			}
		' "${hash_files[@]}"
	fi
}

# 2. and 3. Citations and stray references, found by awk, checked here.
# awk prints "file<TAB>line<TAB>cite<TAB>doc<TAB>heading" for a citation and
# "file<TAB>line<TAB>bad<TAB>message" for a reference that must go.
check_text() {
	local f line kind a b doc target
	while IFS=$'\t' read -r f line kind a b; do
		case "$kind" in
		bad) fail "$f" "$line" "$a" ;;
		named)
			doc=${a#docs/}
			[ -f "docs/$doc" ] || [ -f "$doc" ] ||
				fail "$f" "$line" "$a is not a file of this repository: cite one under docs/"
			;;
		cite)
			citations=$((citations + 1))
			doc=${a#docs/}
			if [ -f "docs/$doc" ]; then
				target=docs/$doc
			elif [ -f "$doc" ] && [ "$a" = "$doc" ]; then
				target=$doc
			else
				fail "$f" "$line" "citation of $a: no such file docs/$doc"
				continue
			fi
			has_heading "$target" "$b" ||
				fail "$f" "$line" "citation of $a \"$b\": no such ## or ### heading in $target"
			;;
		esac
	done < <(scan_text | awk -F '\t' '
		{
			file = $1; line = $2; kind = $3
			t = $0
			sub(/^[^\t]*\t[^\t]*\t[^\t]*\t/, "", t)
			q = "\""
			# Citations: a doc name in capitals, then the heading in quotes.
			s = t
			while (match(s, /(docs\/)?[A-Z][A-Z_]*\.md "/)) {
				doc = substr(s, RSTART, RLENGTH - 2)
				rest = substr(s, RSTART + RLENGTH)
				e = index(rest, q)
				if (e == 0) {
					print file "\t" line "\tbad\tcitation of " doc " without its closing quote: keep the heading on one line"
					break
				}
				print file "\t" line "\tcite\t" doc "\t" substr(rest, 1, e - 1)
				s = substr(rest, e + 1)
			}
			# In comments, every doc named must be a file of the repository.
			if (kind == "comment") {
				s = t
				while (match(s, /(docs\/)?[A-Z][A-Z_]*\.md/)) {
					print file "\t" line "\tnamed\t" substr(s, RSTART, RLENGTH)
					s = substr(s, RSTART + RLENGTH)
				}
			}
			# In comments, the facts file is only ever cited with a heading.
			if (kind == "comment") {
				s = t
				while (match(s, /FACTS\.md/)) {
					after = substr(s, RSTART + RLENGTH, 2)
					if (after != " " q)
						print file "\t" line "\tbad\tFACTS.md cited without a heading: name its section in quotes"
					s = substr(s, RSTART + RLENGTH)
				}
			}
			# References to what is not in the repository.
			if (t ~ /\.\.\/shared\// || t ~ /\/work\/shared/ || t ~ /shared\/[A-Z][A-Z_]*\.md/)
				print file "\t" line "\tbad\ta reference to the shared notes outside the repository"
		}
	')
}

check_links
check_text

if [ "$failures" -gt 0 ]; then
	printf 'check-docs: %d problem(s) in %d links and %d citations\n' "$failures" "$links" "$citations" >&2
	exit 1
fi
printf 'check-docs: %d links, %d citations ok\n' "$links" "$citations"
