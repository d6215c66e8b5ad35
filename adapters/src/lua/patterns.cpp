// The metered pattern matcher (patterns.hpp). It implements the pattern
// language of the Lua 5.4 manual (§6.4.1: classes, sets, the quantifiers
// * + - ?, anchors, captures and position captures, %b, %f and back
// references) with the library's semantics for find, match, gmatch and
// gsub, and its limits: 32 captures, 200 levels of recursion. Each step
// (an attempt at one pattern item, one more character a quantifier takes)
// counts one instruction of the call's budget; every `batch` steps the
// sandbox checks the budget and the deadline and raises the limit's error.
//
// Errors are Lua errors (longjmp): no function here holds a C++ object
// with a destructor, and text is built in luaL_Buffer (the state's memory,
// under its cap).
#include "patterns.hpp"

#include <lua.hpp>

#include <cctype>
#include <cstring>

namespace colony::adapters::lua::detail {
namespace {

constexpr int max_captures = 32;
constexpr int max_depth = 200;
constexpr std::uint32_t batch = 1024;
constexpr char esc = '%';
constexpr char specials[] = "^$*+?.([%-";
constexpr std::ptrdiff_t cap_unfinished = -1;
constexpr std::ptrdiff_t cap_position = -2;

struct match_state {
  const char* src_init; // the subject
  const char* src_end;
  const char* p_end; // the pattern's end
  lua_State* L;
  int depth; // recursion left
  int level; // captures open or closed
  std::uint32_t steps;
  struct {
    const char* init;
    std::ptrdiff_t len;
  } capture[max_captures];
};

inline unsigned char uc(char c) { return static_cast<unsigned char>(c); }

inline void step(match_state* ms, std::uint32_t n = 1) {
  ms->steps += n;
  if (ms->steps >= batch) {
    std::uint32_t s = ms->steps;
    ms->steps = 0;
    charge_steps(ms->L, s);
  }
}

void prepare(match_state* ms, lua_State* L, const char* s, std::size_t ls, const char* p, std::size_t lp) {
  ms->L = L;
  ms->src_init = s;
  ms->src_end = s + ls;
  ms->p_end = p + lp;
  ms->steps = 0;
}

void restart(match_state* ms) {
  ms->level = 0;
  ms->depth = max_depth;
}

int check_capture(match_state* ms, int l) {
  l -= '1';
  if (l < 0 || l >= ms->level || ms->capture[l].len == cap_unfinished)
    return luaL_error(ms->L, "invalid capture index %%%d", l + 1);
  return l;
}

int capture_to_close(match_state* ms) {
  int level = ms->level - 1;
  for (; level >= 0; level--)
    if (ms->capture[level].len == cap_unfinished)
      return level;
  return luaL_error(ms->L, "invalid pattern capture");
}

/// The end of the single-character class at `p`.
const char* class_end(match_state* ms, const char* p) {
  switch (*p++) {
    case esc:
      if (p == ms->p_end)
        luaL_error(ms->L, "malformed pattern (ends with '%%')");
      return p + 1;
    case '[':
      if (*p == '^')
        p++;
      do { // look for the ']'; the first character of the set is never it
        if (p == ms->p_end)
          luaL_error(ms->L, "malformed pattern (missing ']')");
        if (*(p++) == esc && p < ms->p_end)
          p++;
      } while (*p != ']');
      return p + 1;
    default: return p;
  }
}

bool match_class(int c, int cl) {
  bool res;
  switch (std::tolower(cl)) {
    case 'a': res = std::isalpha(c) != 0; break;
    case 'c': res = std::iscntrl(c) != 0; break;
    case 'd': res = std::isdigit(c) != 0; break;
    case 'g': res = std::isgraph(c) != 0; break;
    case 'l': res = std::islower(c) != 0; break;
    case 'p': res = std::ispunct(c) != 0; break;
    case 's': res = std::isspace(c) != 0; break;
    case 'u': res = std::isupper(c) != 0; break;
    case 'w': res = std::isalnum(c) != 0; break;
    case 'x': res = std::isxdigit(c) != 0; break;
    case 'z': res = c == 0; break; // deprecated, kept as the library keeps it
    default: return cl == c;
  }
  return std::isupper(cl) != 0 ? !res : res;
}

/// Whether `c` is in the set from `p` (its '[') to `ec` (its ']').
bool match_set(int c, const char* p, const char* ec) {
  bool sig = true;
  if (*(p + 1) == '^') {
    sig = false;
    p++;
  }
  while (++p < ec) {
    if (*p == esc) {
      p++;
      if (match_class(c, uc(*p)))
        return sig;
    } else if (*(p + 1) == '-' && p + 2 < ec) {
      p += 2;
      if (uc(*(p - 2)) <= c && c <= uc(*p))
        return sig;
    } else if (uc(*p) == c) {
      return sig;
    }
  }
  return !sig;
}

bool single_match(match_state* ms, const char* s, const char* p, const char* ep) {
  if (s >= ms->src_end)
    return false;
  int c = uc(*s);
  switch (*p) {
    case '.': return true;
    case esc: return match_class(c, uc(*(p + 1)));
    case '[': return match_set(c, p, ep - 1);
    default: return uc(*p) == c;
  }
}

const char* match(match_state* ms, const char* s, const char* p);

const char* match_balance(match_state* ms, const char* s, const char* p) {
  if (p >= ms->p_end - 1)
    luaL_error(ms->L, "malformed pattern (missing arguments to '%%b')");
  if (s >= ms->src_end || *s != *p)
    return nullptr;
  char b = *p, e = *(p + 1);
  int open = 1;
  while (++s < ms->src_end) {
    step(ms);
    if (*s == e) {
      if (--open == 0)
        return s + 1;
    } else if (*s == b) {
      open++;
    }
  }
  return nullptr;
}

const char* max_expand(match_state* ms, const char* s, const char* p, const char* ep) {
  std::ptrdiff_t i = 0;
  while (single_match(ms, s + i, p, ep)) {
    step(ms);
    i++;
  }
  while (i >= 0) { // try the rest with the longest run first
    if (const char* res = match(ms, s + i, ep + 1))
      return res;
    i--;
  }
  return nullptr;
}

const char* min_expand(match_state* ms, const char* s, const char* p, const char* ep) {
  for (;;) {
    if (const char* res = match(ms, s, ep + 1))
      return res;
    if (!single_match(ms, s, p, ep))
      return nullptr;
    s++;
  }
}

const char* start_capture(match_state* ms, const char* s, const char* p, std::ptrdiff_t what) {
  if (ms->level >= max_captures)
    luaL_error(ms->L, "too many captures");
  ms->capture[ms->level].init = s;
  ms->capture[ms->level].len = what;
  ms->level++;
  const char* res = match(ms, s, p);
  if (res == nullptr)
    ms->level--;
  return res;
}

const char* end_capture(match_state* ms, const char* s, const char* p) {
  int l = capture_to_close(ms);
  ms->capture[l].len = s - ms->capture[l].init;
  const char* res = match(ms, s, p);
  if (res == nullptr)
    ms->capture[l].len = cap_unfinished;
  return res;
}

const char* match_capture(match_state* ms, const char* s, int l) {
  l = check_capture(ms, l);
  auto len = static_cast<std::size_t>(ms->capture[l].len);
  step(ms, static_cast<std::uint32_t>(len / 64));
  if (static_cast<std::size_t>(ms->src_end - s) >= len && std::memcmp(ms->capture[l].init, s, len) == 0)
    return s + len;
  return nullptr;
}

const char* match(match_state* ms, const char* s, const char* p) {
  const char* ep = nullptr;
  const char* res = nullptr;
  int previous = 0;
  if (ms->depth-- == 0)
    luaL_error(ms->L, "pattern too complex");
again:
  step(ms);
  if (p != ms->p_end) {
    switch (*p) {
      case '(':
        s = *(p + 1) == ')' ? start_capture(ms, s, p + 2, cap_position) : start_capture(ms, s, p + 1, cap_unfinished);
        break;
      case ')': s = end_capture(ms, s, p + 1); break;
      case '$':
        if (p + 1 != ms->p_end)
          goto item; // a '$' not at the end is a plain character
        s = s == ms->src_end ? s : nullptr;
        break;
      case esc:
        switch (*(p + 1)) {
          case 'b':
            s = match_balance(ms, s, p + 2);
            if (s != nullptr) {
              p += 4;
              goto again;
            }
            break;
          case 'f':
            p += 2;
            if (*p != '[')
              luaL_error(ms->L, "missing '[' after '%%f' in pattern");
            ep = class_end(ms, p);
            previous = s == ms->src_init ? 0 : uc(*(s - 1));
            if (!match_set(previous, p, ep - 1) && match_set(s < ms->src_end ? uc(*s) : 0, p, ep - 1)) {
              p = ep;
              goto again;
            }
            s = nullptr;
            break;
          case '0':
          case '1':
          case '2':
          case '3':
          case '4':
          case '5':
          case '6':
          case '7':
          case '8':
          case '9':
            s = match_capture(ms, s, uc(*(p + 1)));
            if (s != nullptr) {
              p += 2;
              goto again;
            }
            break;
          default: goto item;
        }
        break;
      default:
      item:
        ep = class_end(ms, p);
        if (!single_match(ms, s, p, ep)) {
          if (*ep == '*' || *ep == '?' || *ep == '-') { // it may match zero times
            p = ep + 1;
            goto again;
          }
          s = nullptr;
        } else {
          switch (*ep) {
            case '?':
              res = match(ms, s + 1, ep + 1);
              if (res != nullptr) {
                s = res;
              } else {
                p = ep + 1;
                goto again;
              }
              break;
            case '+': s = max_expand(ms, s + 1, p, ep); break;
            case '*': s = max_expand(ms, s, p, ep); break;
            case '-': s = min_expand(ms, s, p, ep); break;
            default:
              s++;
              p = ep;
              goto again;
          }
        }
        break;
    }
  }
  ms->depth++;
  return s;
}

/// Capture `i` (the whole match when there are none), as a length; a
/// position capture pushes its index and answers cap_position.
std::ptrdiff_t get_capture(match_state* ms, int i, const char* s, const char* e, const char** cap) {
  if (i >= ms->level) {
    if (i != 0)
      luaL_error(ms->L, "invalid capture index %%%d", i + 1);
    *cap = s;
    return e - s;
  }
  std::ptrdiff_t len = ms->capture[i].len;
  *cap = ms->capture[i].init;
  if (len == cap_unfinished)
    luaL_error(ms->L, "unfinished capture");
  else if (len == cap_position)
    lua_pushinteger(ms->L, (ms->capture[i].init - ms->src_init) + 1);
  return len;
}

void push_capture(match_state* ms, int i, const char* s, const char* e) {
  const char* cap = nullptr;
  std::ptrdiff_t len = get_capture(ms, i, s, e, &cap);
  if (len != cap_position)
    lua_pushlstring(ms->L, cap, static_cast<std::size_t>(len));
}

int push_captures(match_state* ms, const char* s, const char* e) {
  int n = (ms->level == 0 && s != nullptr) ? 1 : ms->level;
  luaL_checkstack(ms->L, n, "too many captures");
  for (int i = 0; i < n; i++)
    push_capture(ms, i, s, e);
  return n;
}

/// A string position as the library reads one: negative from the end, 0 as 1.
std::size_t position(lua_Integer pos, std::size_t len) {
  if (pos > 0)
    return static_cast<std::size_t>(pos);
  if (pos == 0)
    return 1;
  if (pos < -static_cast<lua_Integer>(len))
    return 1;
  return len + static_cast<std::size_t>(pos) + 1;
}

bool no_specials(const char* p, std::size_t lp) {
  for (std::size_t i = 0; i < lp; i++)
    if (p[i] != '\0' && std::strchr(specials, p[i]) != nullptr)
      return false;
  return true;
}

/// A plain search, metered: each place where the first byte matches costs
/// the length compared.
const char* plain_find(match_state* ms, const char* s1, std::size_t l1, const char* s2, std::size_t l2) {
  if (l2 == 0)
    return s1;
  if (l2 > l1)
    return nullptr;
  l2--;
  l1 -= l2;
  while (l1 > 0) {
    const void* hit = std::memchr(s1, *s2, l1);
    if (hit == nullptr)
      return nullptr;
    const char* init = static_cast<const char*>(hit) + 1;
    step(ms, static_cast<std::uint32_t>(1 + (init - s1) / 256 + l2 / 64));
    if (std::memcmp(init, s2 + 1, l2) == 0)
      return init - 1;
    l1 -= static_cast<std::size_t>(init - s1);
    s1 = init;
  }
  return nullptr;
}

int find_or_match(lua_State* L, bool find) {
  std::size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = position(luaL_optinteger(L, 3, 1), ls) - 1;
  if (init > ls) {
    luaL_pushfail(L);
    return 1;
  }
  match_state ms;
  prepare(&ms, L, s, ls, p, lp);
  if (find && (lua_toboolean(L, 4) != 0 || no_specials(p, lp))) {
    if (const char* hit = plain_find(&ms, s + init, ls - init, p, lp)) {
      lua_pushinteger(L, (hit - s) + 1);
      lua_pushinteger(L, static_cast<lua_Integer>((hit - s) + static_cast<std::ptrdiff_t>(lp)));
      return 2;
    }
  } else {
    const char* s1 = s + init;
    bool anchor = *p == '^';
    if (anchor) {
      p++;
      lp--;
      prepare(&ms, L, s, ls, p, lp);
    }
    do {
      restart(&ms);
      if (const char* e = match(&ms, s1, p)) {
        if (find) {
          lua_pushinteger(L, (s1 - s) + 1);
          lua_pushinteger(L, e - s);
          return push_captures(&ms, nullptr, nullptr) + 2;
        }
        return push_captures(&ms, s1, e);
      }
    } while (s1++ < ms.src_end && !anchor);
  }
  luaL_pushfail(L);
  return 1;
}

int str_find(lua_State* L) { return find_or_match(L, true); }
int str_match(lua_State* L) { return find_or_match(L, false); }

struct gmatch_state {
  const char* src;
  const char* p;
  const char* last;
  match_state ms;
};

int gmatch_next(lua_State* L) {
  auto* gm = static_cast<gmatch_state*>(lua_touserdata(L, lua_upvalueindex(3)));
  gm->ms.L = L; // the iterator may run in another coroutine than the one that made it
  for (const char* src = gm->src; src <= gm->ms.src_end; src++) {
    restart(&gm->ms);
    const char* e = match(&gm->ms, src, gm->p);
    if (e != nullptr && e != gm->last) {
      gm->src = gm->last = e;
      return push_captures(&gm->ms, src, e);
    }
  }
  return 0;
}

int str_gmatch(lua_State* L) {
  std::size_t ls = 0, lp = 0;
  const char* s = luaL_checklstring(L, 1, &ls);
  const char* p = luaL_checklstring(L, 2, &lp);
  std::size_t init = position(luaL_optinteger(L, 3, 1), ls) - 1;
  lua_settop(L, 2); // the subject and the pattern stay alive as upvalues
  auto* gm = static_cast<gmatch_state*>(lua_newuserdatauv(L, sizeof(gmatch_state), 0));
  if (init > ls)
    init = ls + 1; // past the end: no match
  prepare(&gm->ms, L, s, ls, p, lp);
  gm->src = s + init;
  gm->p = p;
  gm->last = nullptr;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

void add_string(match_state* ms, luaL_Buffer* b, const char* s, const char* e) {
  std::size_t l = 0;
  lua_State* L = ms->L;
  const char* news = lua_tolstring(L, 3, &l);
  const char* p = nullptr;
  while ((p = static_cast<const char*>(std::memchr(news, esc, l))) != nullptr) {
    luaL_addlstring(b, news, static_cast<std::size_t>(p - news));
    p++;
    if (*p == esc) {
      luaL_addchar(b, *p);
    } else if (*p == '0') {
      luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    } else if (std::isdigit(uc(*p)) != 0) {
      const char* cap = nullptr;
      std::ptrdiff_t len = get_capture(ms, *p - '1', s, e, &cap);
      if (len == cap_position)
        luaL_addvalue(b);
      else
        luaL_addlstring(b, cap, static_cast<std::size_t>(len));
    } else {
      luaL_error(L, "invalid use of '%c' in replacement string", esc);
    }
    l -= static_cast<std::size_t>(p + 1 - news);
    news = p + 1;
    step(ms);
  }
  luaL_addlstring(b, news, l);
}

/// Adds the replacement of the match s..e; false when it kept the original.
bool add_value(match_state* ms, luaL_Buffer* b, const char* s, const char* e, int tr) {
  lua_State* L = ms->L;
  switch (tr) {
    case LUA_TFUNCTION: {
      lua_pushvalue(L, 3);
      int n = push_captures(ms, s, e);
      lua_call(L, n, 1); // plugin code: the count hook meters it
      break;
    }
    case LUA_TTABLE:
      push_capture(ms, 0, s, e);
      lua_gettable(L, 3);
      break;
    default: add_string(ms, b, s, e); return true;
  }
  if (lua_toboolean(L, -1) == 0) { // nil or false: keep the original
    lua_pop(L, 1);
    luaL_addlstring(b, s, static_cast<std::size_t>(e - s));
    return false;
  }
  if (lua_isstring(L, -1) == 0)
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  luaL_addvalue(b);
  return true;
}

int str_gsub(lua_State* L) {
  std::size_t srcl = 0, lp = 0;
  const char* src = luaL_checklstring(L, 1, &srcl);
  const char* p = luaL_checklstring(L, 2, &lp);
  const char* last = nullptr;
  int tr = lua_type(L, 3);
  lua_Integer max_s = luaL_optinteger(L, 4, static_cast<lua_Integer>(srcl) + 1);
  bool anchor = *p == '^';
  lua_Integer n = 0;
  bool changed = false;
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                   "string/function/table");
  match_state ms;
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  if (anchor) {
    p++;
    lp--;
  }
  prepare(&ms, L, src, srcl, p, lp);
  while (n < max_s) {
    restart(&ms);
    const char* e = match(&ms, src, p);
    if (e != nullptr && e != last) {
      n++;
      changed = add_value(&ms, &b, src, e, tr) || changed;
      src = last = e;
    } else if (src < ms.src_end) {
      luaL_addchar(&b, *src++);
    } else {
      break;
    }
    if (anchor)
      break;
  }
  if (!changed) {
    lua_pushvalue(L, 1);
  } else {
    luaL_addlstring(&b, src, static_cast<std::size_t>(ms.src_end - src));
    luaL_pushresult(&b);
  }
  lua_pushinteger(L, n);
  return 2;
}

} // namespace

void install_patterns(lua_State* L) {
  static const luaL_Reg fns[] = {
    {"find", str_find}, {"match", str_match}, {"gmatch", str_gmatch}, {"gsub", str_gsub}, {nullptr, nullptr}};
  luaL_setfuncs(L, fns, 0);
}

} // namespace colony::adapters::lua::detail
