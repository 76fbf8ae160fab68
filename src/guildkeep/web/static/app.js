// Loads the next leaderboard page in place (the link still works without JavaScript).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const next = document.getElementById("next");
  const board = document.getElementById("board");
  if (!next || !board) return;
  const more = document.createElement("button");
  more.type = "button";
  more.id = "more";
  more.textContent = "Show more";
  next.after(more);
  const guild = next.dataset.guild;
  let api = next.dataset.api;
  const el = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls; if (text !== undefined) n.textContent = text; return n; };
  const compact = (v) => v >= 1e6 ? (v / 1e6).toFixed(1).replace(/\.0$/, "") + "M" : v >= 1e4 ? (v / 1e3).toFixed(1).replace(/\.0$/, "") + "k" : String(v);
  more.addEventListener("click", async () => {
    more.disabled = true;
    const resp = await fetch(api, { headers: { Accept: "application/json" } });
    if (!resp.ok) { more.textContent = "Could not load more"; return; }
    const data = await resp.json();
    for (const e of data.entries) {
      const li = el("li", "row"); li.dataset.user = e.user_id;
      li.append(el("span", "rank", "#" + e.rank));
      if (e.avatar_url) { const img = el("img", "avatar"); img.src = e.avatar_url; img.alt = ""; li.append(img); }
      else li.append(el("span", "avatar initials", e.initials));
      const a = el("a", "name", e.name); a.href = "/guilds/" + guild + "/members/" + e.user_id; li.append(a);
      li.append(el("span", "level", "Level " + e.level));
      li.append(el("span", "xp", compact(e.xp) + " XP"));
      const bar = el("span", "bar"); const fill = el("span"); fill.style.width = e.progress + "%"; bar.append(fill); li.append(bar);
      board.append(li);
    }
    if (data.next) {
      api = "/api/guilds/" + guild + "/leaderboard?after=" + encodeURIComponent(data.next);
      next.href = "/guilds/" + guild + "?after=" + encodeURIComponent(data.next);
      more.disabled = false;
    } else { more.remove(); next.remove(); }
  });
});
