"use strict";
// The clips page follows the store while `wakeward listen` or `satellite` add to it: every
// few seconds it asks /clips/updates for the clips after the newest it knows (with the page's
// filters) and puts the rows the server rendered at the top of the list, without a reload (a
// clip playing keeps playing). On an older page it says that new clips came, with a link.
(function () {
  const list = document.querySelector("ul.clips[data-newest]");
  if (!list) {
    return;
  }
  let newest = Number(list.dataset.newest);
  const live = list.dataset.live === "1";
  const every = Number(list.dataset.pollMs) || 3000;
  const notice = document.getElementById("new-clips");

  function setText(selector, value) {
    const node = document.querySelector(selector);
    if (node && value !== undefined) {
      node.textContent = String(value);
    }
  }

  function insert(html) {
    const template = document.createElement("template");
    template.innerHTML = html;
    for (const row of Array.from(template.content.querySelectorAll("li.clip"))) {
      if (document.getElementById(row.id)) {
        row.remove(); // shown already
      }
    }
    const added = template.content.querySelectorAll("li.clip").length;
    if (added) {
      const empty = list.querySelector("li.empty");
      if (empty) {
        empty.remove();
      }
      list.prepend(template.content);
      const end = document.querySelector("p.count .shown-end");
      if (end) {
        end.textContent = String(Number(end.textContent) + added);
      }
    }
  }

  async function poll() {
    try {
      const params = new URLSearchParams(list.dataset.query);
      params.set("after", String(newest));
      const answer = await fetch("/clips/updates?" + params.toString(), {
        credentials: "same-origin",
        cache: "no-store",
      });
      if (answer.ok) {
        const update = await answer.json();
        if (update.added > 0) {
          if (live) {
            insert(update.rows);
          } else if (notice) {
            notice.hidden = false;
          }
        }
        setText("p.count .matched", update.matched);
        setText("p.count .total", update.total);
        newest = Math.max(newest, Number(update.newest));
        list.dataset.newest = String(newest);
      }
    } catch (e) {
      // the server stopped or is busy: ask again later
    }
    window.setTimeout(poll, every);
  }

  window.setTimeout(poll, every);
})();

// A retrain run's page follows its output: /retrain/<id>/log?offset=N gives what the trainer
// wrote since; when the run ends the page reloads once, to show the figures.
(function () {
  const log = document.getElementById("train-log");
  if (!log || log.dataset.state !== "running") {
    return;
  }
  let offset = Number(log.dataset.offset);
  const every = Number(log.dataset.pollMs) || 3000;

  async function poll() {
    try {
      const answer = await fetch(
        "/retrain/" + encodeURIComponent(log.dataset.job) + "/log?offset=" + offset,
        { credentials: "same-origin", cache: "no-store" },
      );
      if (answer.ok) {
        const update = await answer.json();
        if (update.text) {
          const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
          log.append(document.createTextNode(update.text));
          if (atEnd) {
            log.scrollTop = log.scrollHeight;
          }
        }
        offset = update.offset;
        log.dataset.offset = String(offset);
        if (update.state !== "running" && !update.text) {
          window.location.reload();
          return;
        }
      }
    } catch (e) {
      // the server stopped or is busy: ask again later
    }
    window.setTimeout(poll, every);
  }

  window.setTimeout(poll, every);
})();
