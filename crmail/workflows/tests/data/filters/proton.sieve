require ["include", "environment", "variables", "relational", "comparator-i;ascii-numeric", "spamtest"];
require ["fileinto", "imap4flags"];

# Generated: Do not run this script on spam messages
if allof (environment :matches "vnd.proton.spam-threshold" "*", spamtest :value "ge" :comparator "i;ascii-numeric" "${1}") {
    return;
}

/**
 * @type or
 * @comparator contains
 * @comparator contains
 */
if anyof (header :comparator "i;unicode-casemap" :contains "Subject" ["verify your", "sign-in attempt"], address :all :comparator "i;unicode-casemap" :contains "From" ["no-reply@accounts.google.com", "security@github.com"]) {
    fileinto "Security";
}

/**
 * @type and
 * @comparator is
 * @comparator contains
 */
if allof (address :all :comparator "i;unicode-casemap" :is "From" "digest@news.example.org", header :comparator "i;unicode-casemap" :contains "Subject" "weekly") {
    fileinto "Reading";
    addflag "\\Seen";
}

# Starred from the family
if address :all :comparator "i;unicode-casemap" :matches "From" "*@family.example" {
    addflag "\\Flagged";
}
