"""`runbook audit report`: one document for an auditor, for a period.

collect.py reads and verifies every journal in scope into plain values (runs with their final
state and transitions, steps per host, approvals, reviews, checklist instances); summary.py
counts them into the summary and index rows (also the CSV and JSON exports); html.py and md.py
render the document; pdf.py prints the HTML with headless Chromium.
"""
