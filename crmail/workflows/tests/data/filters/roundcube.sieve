require ["fileinto","imap4flags","copy"];
# rule:[Spam]
if header :contains "x-spam-status" "Yes"
{
	fileinto "Junk";
	stop;
}
# rule:[Newsletters]
if anyof (header :contains "list-unsubscribe" "@", header :contains "from" "newsletter@")
{
	addflag "\\Seen";
	fileinto "Newsletters";
}
# rule:[Customers]
if allof (header :contains "to" "sales@example.com", not header :contains "subject" "out of office")
{
	addflag "\\Flagged";
}
# rule:[Copy invoices]
if header :contains "subject" "invoice"
{
	fileinto :copy "Invoices";
}
# rule:[Old project]
if false # header :contains "subject" "[apollo]"
{
	fileinto "Archive.Apollo";
}
# rule:[Forward support]
if address :is "to" "support@example.com"
{
	redirect "helpdesk@example.net";
}
