require ["fileinto", "mailbox", "envelope", "subaddress", "imap4flags", "vacation", "body"];

# Spam: the header a spam filter adds before delivery.
if header :contains "X-Spam-Flag" "YES" {
  fileinto :create "Spam";
  stop;
}

# Mailing lists by their List-Id.
if header :contains "list-id" "<dovecot.dovecot.org>" {
  fileinto :create "Lists.dovecot";
  stop;
}
elsif exists "List-Id" {
  addflag "\\Seen";
  fileinto "Lists";
  stop;
}

# Mail to user+lists@ (plus addressing) goes to its own folder.
if envelope :detail "to" "lists" {
  fileinto "Lists";
}

# The boss writes: flag it, and file it under Work.
if address :is "from" ["boss@example.com", "ceo@example.com"] {
  setflag "\\Flagged";
  fileinto "Work";
}

# Invoices as attachments from the accounting system.
if allof (address :domain :is "from" "billing.example.com",
          header :matches "subject" "Invoice *",
          not body :text :contains "draft") {
  addflag ["\\Seen", "$Invoice"];
  fileinto "Accounting.Invoices";
}

# Away message.
if not header :contains "subject" "[dovecot]" {
  vacation :days 7 :subject "Out of office"
    text:
I am away until Monday.
..and will answer then.
.
;
}
