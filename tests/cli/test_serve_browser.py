"""The chat page at `/` in headless Chromium (Debian chromium + chromium-driver, driven by
Selenium): type a message, send it, read the streamed reply, keep the conversation for a second
turn, stop a long reply. Saves a screenshot to <build>/artifacts/serve-screenshot.png (or
$EDGELM_ARTIFACTS). About 30-60 s on a loaded 2-core machine."""
import os
import shutil
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "server"))
from serve_harness import BIN, SOCKET_TIMEOUT, Server, check, run_all  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

WAIT = 120  # seconds a page state may take to appear (hang protection)
FIRST = "Give me two tips for better sleep."


def artifacts_dir():
    d = os.environ.get("EDGELM_ARTIFACTS") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(BIN)))), "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1100,760", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    d = webdriver.Chrome(service=service, options=opts)
    d.set_page_load_timeout(SOCKET_TIMEOUT)
    d.set_script_timeout(SOCKET_TIMEOUT)
    return d


def bubbles(d, role):
    return [e.text for e in d.find_elements(By.CSS_SELECTOR, f"#messages .msg.{role}")]


def set_max_tokens(d, n):
    box = d.find_element(By.ID, "max-tokens")
    box.clear()
    box.send_keys(str(n))


def send(d, text):
    box = d.find_element(By.ID, "input")
    box.send_keys(text)
    d.find_element(By.ID, "send").click()


# Watches #messages; once reply number arguments[0] (1-based) shows more than 5 characters, it
# clicks Stop if the reply is still streaming and Stop is shown, and records what it saw in
# window.stopClick.
STOP_ON_FIRST_TEXT = """
const want = arguments[0], box = document.getElementById("messages");
window.stopClick = null;
const watch = new MutationObserver(() => {
  const replies = box.querySelectorAll(".msg.assistant");
  if (replies.length < want || replies[want - 1].textContent.length <= 5) return;
  watch.disconnect();
  const reply = replies[want - 1], stop = document.getElementById("stop");
  const seen = { streaming: reply.classList.contains("streaming"), shown: !stop.hidden && !stop.disabled,
                 chars: reply.textContent.length };
  if (seen.streaming && seen.shown) stop.click();
  window.stopClick = seen;
});
watch.observe(box, { childList: true, subtree: true, characterData: true });
"""


def wait_idle_with_reply(d, n_replies):
    def done(drv):
        replies = drv.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant")
        return (drv.find_element(By.TAG_NAME, "body").get_attribute("data-busy") == "false"
                and len(replies) == n_replies and "streaming" not in replies[-1].get_attribute("class"))
    WebDriverWait(d, WAIT).until(done)


def test_chat_page_streams_a_reply_and_keeps_the_conversation():
    with Server("-P", "2", "-c", "4096") as s:
        d = browser()
        try:
            d.get(s.base + "/")
            WebDriverWait(d, WAIT).until(lambda drv: drv.find_element(By.ID, "model").text == "SmolLM2-135M-Instruct.Q4_1")
            set_max_tokens(d, 48)  # replies stay short, whatever the sampler draws
            send(d, FIRST)
            # Streaming: the reply bubble shows text while the page is still busy.
            WebDriverWait(d, WAIT).until(
                lambda drv: drv.find_elements(By.CSS_SELECTOR, "#messages .msg.assistant")
                and drv.find_element(By.CSS_SELECTOR, "#messages .msg.assistant").text.strip())
            wait_idle_with_reply(d, 1)
            first = bubbles(d, "assistant")[0]
            check(first.strip(), "empty reply")
            check(bubbles(d, "user") == [FIRST], f"user bubbles {bubbles(d, 'user')}")
            stats = d.find_element(By.ID, "stats").text
            check("tok/s" in stats, f"no tokens/s shown: {stats!r}")

            # Second turn: the page sends the whole conversation.
            send(d, "Now make it shorter.")
            wait_idle_with_reply(d, 2)
            check(len(bubbles(d, "user")) == 2, "second user message missing")
            sent = d.execute_script("return conversation.map(m => m.role)")
            check(sent == ["user", "assistant", "user", "assistant"], f"conversation {sent}")
            check(s.metrics()["edgelm_prompt_tokens_cached_total"] > 0, "the second turn did not reuse the first")
            d.save_screenshot(os.path.join(artifacts_dir(), "serve-screenshot.png"))

            # Stop: a long reply is cut off, the partial text stays, the server frees the slot. Greedy,
            # so that the reply is the same long count every run (a sampled one can end at once).
            # Stop is clicked by an observer in the page, in the same turn of the page's event loop
            # that shows the reply's first characters: the reply is certainly still streaming then,
            # however fast the host (a click from the test, a poll later, could land after the end).
            set_max_tokens(d, 3000)  # far more than is streamed before Stop
            d.find_element(By.ID, "temperature").send_keys("0")
            d.execute_script(STOP_ON_FIRST_TEXT, 3)
            send(d, "Write the numbers from 1 to 1000, separated by commas.")
            WebDriverWait(d, WAIT).until(lambda drv: drv.execute_script("return window.stopClick"))
            click = d.execute_script("return window.stopClick")
            check(click["streaming"] and click["shown"], f"Stop was not clickable while streaming: {click}")
            wait_idle_with_reply(d, 3)
            check("(stopped)" in bubbles(d, "assistant")[2], f"no stop note: {bubbles(d, 'assistant')[2]!r}")
            check(d.execute_script("return conversation.length") == 6, "the stopped reply was not kept")
            s.wait_for("the server to cancel the stopped reply",
                       lambda: s.metrics()['edgelm_requests_total{outcome="cancelled"}'] >= 1)
            s.wait_for("the slot to be freed", lambda: s.json("GET", "/health")[2]["slots_busy"] == 0)
            d.save_screenshot(os.path.join(artifacts_dir(), "serve-screenshot-stopped.png"))
        finally:
            d.quit()


if __name__ == "__main__":
    run_all(globals())
