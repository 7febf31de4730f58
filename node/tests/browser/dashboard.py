"""Drives /dashboard in Debian's headless Chromium through WebDriver (Selenium, chromedriver).

argv: base_url api_key admin_key long_lease short_lease mailbox handoff_id out_dir
Signs in by keyboard, sees the leases made through the API, opens a lease's handoffs and revokes
one, sees a mailbox's queued message, sees the short lease turn expired, reads balance and
billing, and as an operator the cluster; a screenshot of each page goes to out_dir. Exits non-zero
(with the reason) on the first thing that is not as it should be.
"""
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

base, api_key, admin_key, long_lease, short_lease, mailbox, handoff_id, out = sys.argv[1:9]
os.makedirs(out, exist_ok=True)


def browser(width, height):
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--user-data-dir=" + os.path.join(out, f"profile-{width}")):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)


def shot(d, name):
    d.save_screenshot(os.path.join(out, name + ".png"))


def sign_in(d, key):
    d.get(base + "/dashboard")
    wait = WebDriverWait(d, 20)
    field = wait.until(EC.element_to_be_clickable((By.ID, "key")))
    # A label names the field, and the keyboard alone signs in.
    label = d.find_element(By.CSS_SELECTOR, "label[for=key]")
    assert label.text.strip(), "the key field has no label"
    field.send_keys(key)
    field.send_keys(Keys.ENTER)
    return wait


def row(d, lease):
    return d.find_element(By.CSS_SELECTOR, f'tr[data-lease="{lease}"]')


def patient(d, seconds=20):
    # The lease table is drawn again whenever a lease runs out: a row found a moment ago may be
    # gone, and the wait looks again.
    return WebDriverWait(d, seconds, ignored_exceptions=(StaleElementReferenceException,))


def click_in_row(d, lease, label):
    patient(d).until(lambda d: row(d, lease).find_element(By.XPATH, f".//button[text()='{label}']").click() or True)


d = browser(1280, 900)
try:
    wait = sign_in(d, api_key)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-lease="{long_lease}"]')))
    assert "Account" in d.find_element(By.ID, "who").text
    text = patient(d).until(lambda d: row(d, long_lease).get_attribute("data-state") == "active" and row(d, long_lease).text)
    assert "storage" in text and "KiB" in text, text
    # The countdown runs.
    countdown = lambda d: row(d, long_lease).find_element(By.CSS_SELECTOR, "td[data-expires]").text
    before = patient(d).until(countdown)
    time.sleep(2.2)
    after = patient(d).until(countdown)
    assert before != after, f"the countdown did not move: {before!r}"
    shot(d, "leases")

    # One page is 200 leases; the rest come on asking.
    assert len(d.find_elements(By.CSS_SELECTOR, "tr[data-lease]")) == 200
    more = d.find_element(By.ID, "more-leases")
    assert more.is_displayed()
    more.click()
    patient(d).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr[data-lease]")) == 204)
    patient(d).until(lambda d: not d.find_element(By.ID, "more-leases").is_displayed())

    # Access history.
    click_in_row(d, long_lease, "History")
    wait.until(EC.text_to_be_present_in_element((By.ID, "detail-title"), "Access history"))

    # Handoffs: one live token, revoke it, and it is gone.
    click_in_row(d, long_lease, "Handoffs")
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-handoff="{handoff_id}"]')))
    token_row = d.find_element(By.CSS_SELECTOR, f'tr[data-handoff="{handoff_id}"]')
    assert "3 of 3" in token_row.text, token_row.text
    shot(d, "handoffs")
    revoke = token_row.find_element(By.XPATH, ".//button[text()='Revoke']")
    revoke.send_keys(Keys.ENTER)  # keyboard again
    wait.until(EC.presence_of_element_located((By.ID, "no-handoffs")))
    assert not d.find_elements(By.CSS_SELECTOR, f'tr[data-handoff="{handoff_id}"]')
    shot(d, "handoff-revoked")

    # A mailbox's queued messages.
    click_in_row(d, mailbox, "Messages")
    wait.until(EC.presence_of_element_located((By.ID, "message-table")))
    assert "msg_1" in d.find_element(By.ID, "message-table").text
    assert "1 queued" in d.find_element(By.ID, "detail-title").text
    shot(d, "mailbox")

    # The short lease runs out on screen, and the ledger's answer agrees.
    patient(d, 40).until(lambda d: row(d, short_lease).get_attribute("data-state") == "expired")
    patient(d, 10).until(lambda d: "expired" in row(d, short_lease).text)
    shot(d, "expired")

    # Balance and billing.
    d.find_element(By.CSS_SELECTOR, "button[data-view=billing]").click()
    wait.until(EC.text_to_be_present_in_element((By.ID, "balance"), "USDC"))
    wait.until(lambda d: long_lease in d.find_element(By.ID, "billing-table").text)
    shot(d, "billing")

    # Signing out ends the session: a reload shows the sign-in form again.
    d.find_element(By.ID, "sign-out").click()
    wait.until(EC.visibility_of_element_located((By.ID, "sign-in")))
    d.refresh()
    wait.until(EC.visibility_of_element_located((By.ID, "sign-in")))

    # A wrong key is refused with a message, and nothing is shown.
    sign_in(d, "rs_live_wrongwrongwrongwrong")
    wait.until(EC.text_to_be_present_in_element((By.ID, "status"), "Sign-in failed"))
    assert not d.find_element(By.ID, "leases").is_displayed()

    # The operator's view.
    sign_in(d, admin_key)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, "tr[data-member='1']")))
    member = d.find_element(By.CSS_SELECTOR, "tr[data-member='1']").text
    assert "leader" in member and "0 entries" in member, member
    shot(d, "cluster")
finally:
    d.quit()

# A phone-sized viewport: the same page, nothing wider than the screen but the tables' own scroll.
p = browser(390, 844)
try:
    wait = sign_in(p, api_key)
    wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, f'tr[data-lease="{long_lease}"]')))
    overflow = p.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a phone"
    shot(p, "phone")
finally:
    p.quit()
print("ok")
